package sqlstore

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/user"
)

const groupColumns = `g.id, g.name, g.display_name, g.external_id, g.source, g.created_at, g.updated_at,
	(SELECT COUNT(*) FROM group_members m WHERE m.group_id = g.id)`

func scanGroup(r interface{ Scan(...any) error }) (user.Group, error) {
	var g user.Group
	var created, updated int64
	err := r.Scan(&g.ID, &g.Name, &g.DisplayName, &g.ExternalID, &g.Source, &created, &updated, &g.MemberCount)
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	return g, mapErr(err)
}

func (s *Store) CreateGroup(ctx context.Context, g user.Group, memberIDs []string, memberSource string) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO user_groups (id, name, name_key, display_name, source, external_id, created_at, updated_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8)`,
			g.ID, g.Name, user.Key(g.Name), g.DisplayName, g.Source, g.ExternalID, micros(g.CreatedAt), micros(g.UpdatedAt)); err != nil {
			return err
		}
		return addMembers(ctx, tx, g.ID, memberIDs, memberSource, g.CreatedAt)
	}))
}

func (s *Store) GetGroup(ctx context.Context, id string) (user.Group, error) {
	return scanGroup(s.read.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM user_groups g WHERE g.id = $1`, id))
}

func groupWhere(f user.GroupFilter) ([]string, []any) {
	var where []string
	var args []any
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			cond = strings.Replace(cond, "?", "$"+itoa(len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.Query != "" {
		like := "%" + likeEscape(strings.ToLower(f.Query)) + "%"
		add(`(g.name_key LIKE ? ESCAPE '\' OR LOWER(g.display_name) LIKE ? ESCAPE '\' OR g.id LIKE ? ESCAPE '\')`, like, like, like)
	}
	if f.Source != "" {
		add(`g.source = ?`, f.Source)
	}
	if f.Name != "" {
		add(`g.name_key = ?`, user.Key(f.Name))
	}
	if f.ExternalID != "" {
		add(`g.external_id = ?`, f.ExternalID)
	}
	if f.ID != "" {
		add(`g.id = ?`, f.ID)
	}
	return where, args
}

func (s *Store) ListGroups(ctx context.Context, f user.GroupFilter, limit int, cursor string) ([]user.Group, string, error) {
	limit = page(limit)
	where, args := groupWhere(f)
	if cursor != "" {
		args = append(args, cursor)
		where = append(where, "g.id > $"+itoa(len(args)))
	}
	q := `SELECT ` + groupColumns + ` FROM user_groups g`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	rows, err := s.read.QueryContext(ctx, q+` ORDER BY g.id LIMIT $`+itoa(len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	gs, err := collect(rows, func(r *sql.Rows) (user.Group, error) { return scanGroup(r) })
	if err != nil {
		return nil, "", err
	}
	return nextPage(gs, limit, func(g user.Group) string { return g.ID })
}

func (s *Store) ListGroupsAt(ctx context.Context, f user.GroupFilter, offset, limit int) ([]user.Group, int, error) {
	where, args := groupWhere(f)
	cond := ""
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, " AND ")
	}
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM user_groups g`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || offset >= total {
		return []user.Group{}, total, nil
	}
	args = append(args, limit, max(offset, 0))
	rows, err := s.read.QueryContext(ctx, `SELECT `+groupColumns+` FROM user_groups g`+cond+` ORDER BY g.id LIMIT $`+itoa(len(args)-1)+` OFFSET $`+itoa(len(args)), args...)
	if err != nil {
		return nil, 0, err
	}
	gs, err := collect(rows, func(r *sql.Rows) (user.Group, error) { return scanGroup(r) })
	return gs, total, err
}

func (s *Store) UpdateGroup(ctx context.Context, id string, update func(*user.Group) error) (user.Group, error) {
	var g user.Group
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if g, err = scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM user_groups g WHERE g.id = $1`+s.forUpdate(), id)); err != nil {
			return err
		}
		before := g
		if err := update(&g); err != nil {
			return err
		}
		g.ID, g.Source, g.CreatedAt, g.MemberCount = before.ID, before.Source, before.CreatedAt, before.MemberCount
		_, err = tx.ExecContext(ctx, `UPDATE user_groups SET name=$2, name_key=$3, display_name=$4, external_id=$5, updated_at=$6 WHERE id=$1`,
			g.ID, g.Name, user.Key(g.Name), g.DisplayName, g.ExternalID, micros(g.UpdatedAt))
		return err
	})
	return g, mapErr(err)
}

func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	return s.exec(ctx, true, `DELETE FROM user_groups WHERE id = $1`, id)
}

func (s *Store) ListMembers(ctx context.Context, groupID string, limit int, cursor string) ([]user.Member, string, error) {
	limit = page(limit)
	var exists int
	if err := s.read.QueryRowContext(ctx, `SELECT 1 FROM user_groups WHERE id = $1`, groupID).Scan(&exists); err != nil {
		return nil, "", mapErr(err)
	}
	rows, err := s.read.QueryContext(ctx, `SELECT m.user_id, u.username, m.source, m.created_at FROM group_members m JOIN users u ON u.id = m.user_id
		WHERE m.group_id = $1 AND m.user_id > $2 ORDER BY m.user_id LIMIT $3`, groupID, cursor, limit+1)
	if err != nil {
		return nil, "", err
	}
	ms, err := collect(rows, func(r *sql.Rows) (user.Member, error) {
		var m user.Member
		var at int64
		err := r.Scan(&m.UserID, &m.Username, &m.Source, &at)
		m.AddedAt = fromMicros(at)
		return m, err
	})
	if err != nil {
		return nil, "", err
	}
	return nextPage(ms, limit, func(m user.Member) string { return m.UserID })
}

// addMembers inserts memberships; a missing user is ErrNotFound (foreign key).
func addMembers(ctx context.Context, tx execer, groupID string, userIDs []string, source string, at time.Time) error {
	for _, uid := range userIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`,
			groupID, uid, source, micros(at)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) touchGroup(ctx context.Context, tx execer, groupID string, at time.Time) error {
	res, err := tx.ExecContext(ctx, `UPDATE user_groups SET updated_at = $2 WHERE id = $1`, groupID, micros(at))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return sql.ErrNoRows
	}
	return nil
}

func (s *Store) AddMembers(ctx context.Context, groupID string, userIDs []string, source string, at time.Time) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.touchGroup(ctx, tx, groupID, at); err != nil {
			return err
		}
		return addMembers(ctx, tx, groupID, userIDs, source, at)
	}))
}

func (s *Store) RemoveMembers(ctx context.Context, groupID string, userIDs []string, at time.Time) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.touchGroup(ctx, tx, groupID, at); err != nil {
			return err
		}
		for _, uid := range userIDs {
			if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, uid); err != nil {
				return err
			}
		}
		return nil
	}))
}

func (s *Store) SetMembers(ctx context.Context, groupID string, userIDs []string, source string, at time.Time) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if err := s.touchGroup(ctx, tx, groupID, at); err != nil {
			return err
		}
		keep := make(map[string]bool, len(userIDs))
		for _, id := range userIDs {
			keep[id] = true
		}
		rows, err := tx.QueryContext(ctx, `SELECT user_id FROM group_members WHERE group_id = $1`, groupID)
		if err != nil {
			return err
		}
		current, err := collect(rows, func(r *sql.Rows) (string, error) {
			var id string
			return id, r.Scan(&id)
		})
		if err != nil {
			return err
		}
		for _, id := range current {
			if !keep[id] {
				if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, groupID, id); err != nil {
					return err
				}
			}
		}
		return addMembers(ctx, tx, groupID, userIDs, source, at)
	}))
}
