package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/agentguard/agentguard/internal/secret"
	"github.com/agentguard/agentguard/internal/store"
	"github.com/agentguard/agentguard/internal/user"
)

const userColumns = `id, username, email, display_name, attributes, active, source, external_id, password_hash <> '', created_at, updated_at`

// queryer is what reads need: the read pool, the write pool or a transaction.
type queryer interface {
	QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row
}

// execer runs changes inside a transaction.
type execer interface {
	queryer
	ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scanUser reads userColumns, then the extra columns into extra.
func scanUser(r interface{ Scan(...any) error }, extra ...any) (user.User, error) {
	var u user.User
	var attrs string
	var active, hasPassword bool
	var activeN int
	var created, updated int64
	if err := r.Scan(append([]any{&u.ID, &u.Username, &u.Email, &u.DisplayName, &attrs, &activeN, &u.Source, &u.ExternalID, &hasPassword, &created, &updated}, extra...)...); err != nil {
		return u, mapErr(err)
	}
	active = activeN != 0
	u.Active, u.HasPassword = active, hasPassword
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	u.Groups = []string{}
	if err := json.Unmarshal([]byte(attrs), &u.Attributes); err != nil {
		return u, fmt.Errorf("user %s: attributes: %w", u.ID, err)
	}
	if u.Attributes == nil {
		u.Attributes = map[string]string{}
	}
	return u, nil
}

func attrsJSON(m map[string]string) string {
	if m == nil {
		m = map[string]string{}
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// loadGroups fills the Groups of users with one query.
func loadGroups(ctx context.Context, q queryer, users []user.User) error {
	if len(users) == 0 {
		return nil
	}
	idx := make(map[string]int, len(users))
	args := make([]any, 0, len(users))
	marks := make([]string, 0, len(users))
	for i, u := range users {
		idx[u.ID] = i
		args = append(args, u.ID)
		marks = append(marks, "$"+itoa(len(args)))
	}
	rows, err := q.QueryContext(ctx, `SELECT m.user_id, g.name FROM group_members m JOIN user_groups g ON g.id = m.group_id
		WHERE m.user_id IN (`+strings.Join(marks, ",")+`) ORDER BY g.name_key`, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var uid, name string
		if err := rows.Scan(&uid, &name); err != nil {
			return err
		}
		if i, ok := idx[uid]; ok {
			users[i].Groups = append(users[i].Groups, name)
		}
	}
	return rows.Err()
}

func (s *Store) CreateUser(ctx context.Context, u user.User, passwordHash string) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `INSERT INTO users (id, username, username_key, email, email_key, display_name, attributes, active, source, external_id, password_hash, created_at, updated_at)
			VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13)`,
			u.ID, u.Username, user.Key(u.Username), u.Email, user.Key(u.Email), u.DisplayName, attrsJSON(u.Attributes),
			boolInt(u.Active), u.Source, u.ExternalID, passwordHash, micros(u.CreatedAt), micros(u.UpdatedAt)); err != nil {
			return err
		}
		return setUserGroups(ctx, tx, u.ID, nil, u.Groups, user.SourceLocal, u.UpdatedAt)
	}))
}

func (s *Store) GetUser(ctx context.Context, id string) (user.User, error) {
	return cached(ctx, s.cache, &s.cache.users, id, cloneUser, func() (user.User, error) {
		return s.getUser(ctx, s.read, `id = $1`, id)
	})
}

func (s *Store) GetUserByUsername(ctx context.Context, username string) (user.User, error) {
	return s.getUser(ctx, s.read, `username_key = $1`, user.Key(username))
}

// getUser reads one user in one query: the group names come as a JSON array in
// the same row. Every token exchange and sign-in reads a user, and a second
// query for the groups was a third of that read's cost.
func (s *Store) getUser(ctx context.Context, q queryer, where string, args ...any) (user.User, error) {
	groups := `(SELECT json_group_array(g.name ORDER BY g.name_key) FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = users.id)`
	if s.dialect == Postgres {
		groups = `COALESCE((SELECT json_agg(g.name ORDER BY g.name_key) FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = users.id)::text, '[]')`
	}
	var names string
	u, err := scanUser(q.QueryRowContext(ctx, `SELECT `+userColumns+`, `+groups+` FROM users WHERE `+where, args...), &names)
	if err != nil {
		return u, err
	}
	if err := json.Unmarshal([]byte(names), &u.Groups); err != nil {
		return u, fmt.Errorf("user %s: groups: %w", u.ID, err)
	}
	return u, nil
}

func (s *Store) UserCredentials(ctx context.Context, username string) (user.User, string, error) {
	var hash string
	row := s.read.QueryRowContext(ctx, `SELECT `+userColumns+`, password_hash FROM users WHERE username_key = $1`, user.Key(username))
	var u user.User
	var attrs string
	var activeN int
	var hasPassword bool
	var created, updated int64
	if err := row.Scan(&u.ID, &u.Username, &u.Email, &u.DisplayName, &attrs, &activeN, &u.Source, &u.ExternalID, &hasPassword, &created, &updated, &hash); err != nil {
		return u, "", mapErr(err)
	}
	u.Active, u.HasPassword = activeN != 0, hasPassword
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	if err := json.Unmarshal([]byte(attrs), &u.Attributes); err != nil {
		return u, "", err
	}
	us := []user.User{u}
	if err := loadGroups(ctx, s.read, us); err != nil {
		return u, "", err
	}
	user.Normalize(&us[0])
	return us[0], hash, nil
}

// userWhere builds the WHERE clause of a user filter; args continue from start.
func userWhere(f user.Filter, args []any) ([]string, []any) {
	var where []string
	add := func(cond string, vals ...any) {
		for _, v := range vals {
			args = append(args, v)
			cond = strings.Replace(cond, "?", "$"+itoa(len(args)), 1)
		}
		where = append(where, cond)
	}
	if f.Query != "" {
		like := "%" + likeEscape(strings.ToLower(f.Query)) + "%"
		add(`(username_key LIKE ? ESCAPE '\' OR email_key LIKE ? ESCAPE '\' OR LOWER(display_name) LIKE ? ESCAPE '\' OR id LIKE ? ESCAPE '\')`, like, like, like, like)
	}
	if f.Group != "" {
		add(`id IN (SELECT m.user_id FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE g.name_key = ?)`, user.Key(f.Group))
	}
	if f.Source != "" {
		add(`source = ?`, f.Source)
	}
	if f.Active != nil {
		add(`active = ?`, boolInt(*f.Active))
	}
	if f.Username != "" {
		add(`username_key = ?`, user.Key(f.Username))
	}
	if f.Email != "" {
		add(`email_key = ?`, user.Key(f.Email))
	}
	if f.ExternalID != "" {
		add(`external_id = ?`, f.ExternalID)
	}
	if f.ID != "" {
		add(`id = ?`, f.ID)
	}
	return where, args
}

func (s *Store) queryUsers(ctx context.Context, q string, args ...any) ([]user.User, error) {
	rows, err := s.read.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	us, err := collect(rows, func(r *sql.Rows) (user.User, error) { return scanUser(r) })
	if err != nil {
		return nil, err
	}
	return us, loadGroups(ctx, s.read, us)
}

func (s *Store) ListUsers(ctx context.Context, f user.Filter, limit int, cursor string) ([]user.User, string, error) {
	limit = page(limit)
	var args []any
	if cursor != "" {
		args = append(args, cursor)
	}
	where, args := userWhere(f, args)
	if cursor != "" {
		where = append(where, "id > $1")
	}
	q := `SELECT ` + userColumns + ` FROM users`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	us, err := s.queryUsers(ctx, q+` ORDER BY id LIMIT $`+itoa(len(args)), args...)
	if err != nil {
		return nil, "", err
	}
	return nextPage(us, limit, func(u user.User) string { return u.ID })
}

func (s *Store) ListUsersAt(ctx context.Context, f user.Filter, offset, limit int) ([]user.User, int, error) {
	where, args := userWhere(f, nil)
	cond := ""
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, " AND ")
	}
	var total int
	if err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM users`+cond, args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if limit <= 0 || offset >= total {
		return []user.User{}, total, nil
	}
	args = append(args, limit, max(offset, 0))
	us, err := s.queryUsers(ctx, `SELECT `+userColumns+` FROM users`+cond+` ORDER BY id LIMIT $`+itoa(len(args)-1)+` OFFSET $`+itoa(len(args)), args...)
	return us, total, err
}

func (s *Store) UpdateUser(ctx context.Context, id string, o user.Orphaning, update func(*user.User) error) (user.User, []user.OrphanChange, error) {
	var u user.User
	var changes []user.OrphanChange
	err := s.tx(ctx, func(tx *sql.Tx) error {
		before, err := s.getUser(ctx, tx, `id = $1`+s.forUpdate(), id)
		if err != nil {
			return err
		}
		u = before
		u.Groups = slices.Clone(before.Groups)
		u.Attributes = cloneMap(before.Attributes)
		if err := update(&u); err != nil {
			return err
		}
		u.ID, u.Source, u.CreatedAt, u.HasPassword = before.ID, before.Source, before.CreatedAt, before.HasPassword
		if _, err := tx.ExecContext(ctx, `UPDATE users SET username=$2, username_key=$3, email=$4, email_key=$5, display_name=$6, attributes=$7, active=$8, external_id=$9, updated_at=$10 WHERE id=$1`,
			u.ID, u.Username, user.Key(u.Username), u.Email, user.Key(u.Email), u.DisplayName, attrsJSON(u.Attributes),
			boolInt(u.Active), u.ExternalID, micros(u.UpdatedAt)); err != nil {
			return err
		}
		if err := setUserGroups(ctx, tx, u.ID, before.Groups, u.Groups, user.SourceLocal, u.UpdatedAt); err != nil {
			return err
		}
		switch {
		case before.Active && !u.Active:
			changes, err = orphanAgents(ctx, tx, s.forUpdate(), before, o)
		case !before.Active && u.Active:
			changes, err = restoreAgents(ctx, tx, u, o.At)
		}
		return err
	})
	return u, changes, mapErr(err)
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func (s *Store) SetPasswordHash(ctx context.Context, id, hash string, at time.Time) error {
	return s.exec(ctx, true, `UPDATE users SET password_hash = $2, updated_at = $3 WHERE id = $1`, id, hash, micros(at))
}

func (s *Store) DeleteUser(ctx context.Context, id string, o user.Orphaning) (user.User, []user.OrphanChange, error) {
	var u user.User
	var changes []user.OrphanChange
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if u, err = s.getUser(ctx, tx, `id = $1`+s.forUpdate(), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id); err != nil {
			return err
		}
		// An inactive user's agents were orphaned when they were deactivated; this
		// finds only agents given to them since.
		changes, err = orphanAgents(ctx, tx, s.forUpdate(), u, o)
		return err
	})
	return u, changes, mapErr(err)
}

// ownerKeys are the owner strings that name u: id, username and email, lowercased.
// The email is left out when another active user has it too (the owner string
// still names someone).
func ownerKeys(ctx context.Context, tx execer, u user.User) ([]string, error) {
	keys := []string{user.Key(u.ID), user.Key(u.Username)}
	if e := user.Key(u.Email); e != "" {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE email_key = $1 AND id <> $2 AND active = 1`, e, u.ID).Scan(&n); err != nil {
			return nil, err
		}
		if n == 0 {
			keys = append(keys, e)
		}
	}
	return keys, nil
}

// orphanAgents flags the agents u owns (and with o.Suspend disables them).
func orphanAgents(ctx context.Context, tx execer, forUpdate string, u user.User, o user.Orphaning) ([]user.OrphanChange, error) {
	keys, err := ownerKeys(ctx, tx, u)
	if err != nil {
		return nil, err
	}
	args := []any{}
	marks := []string{}
	for _, k := range keys {
		args = append(args, k)
		marks = append(marks, "$"+itoa(len(args)))
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, status FROM agents WHERE orphaned = 0 AND owner_key IN (`+strings.Join(marks, ",")+`) ORDER BY id`+forUpdate, args...)
	if err != nil {
		return nil, err
	}
	type row struct{ id, status string }
	found, err := collect(rows, func(r *sql.Rows) (row, error) {
		var x row
		return x, r.Scan(&x.id, &x.status)
	})
	if err != nil {
		return nil, err
	}
	var changes []user.OrphanChange
	for _, a := range found {
		c := user.OrphanChange{AgentID: a.id, Orphaned: true}
		status := a.status
		if o.Suspend && status == "active" {
			status, c.Suspended = "disabled", true
		}
		if _, err := tx.ExecContext(ctx, `UPDATE agents SET orphaned = 1, status = $2, updated_at = $3 WHERE id = $1`, a.id, status, micros(o.At)); err != nil {
			return nil, err
		}
		changes = append(changes, c)
	}
	return changes, nil
}

// restoreAgents clears the orphaned flag of u's agents (u is active again); their
// status stays as it is.
func restoreAgents(ctx context.Context, tx execer, u user.User, at time.Time) ([]user.OrphanChange, error) {
	keys := []string{user.Key(u.ID), user.Key(u.Username)}
	if e := user.Key(u.Email); e != "" {
		keys = append(keys, e)
	}
	args := []any{micros(at)}
	marks := []string{}
	for _, k := range keys {
		args = append(args, k)
		marks = append(marks, "$"+itoa(len(args)))
	}
	rows, err := tx.QueryContext(ctx, `UPDATE agents SET orphaned = 0, updated_at = $1 WHERE orphaned = 1 AND owner_key IN (`+strings.Join(marks, ",")+`) RETURNING id`, args...)
	if err != nil {
		return nil, err
	}
	return collect(rows, func(r *sql.Rows) (user.OrphanChange, error) {
		var c user.OrphanChange
		return c, r.Scan(&c.AgentID)
	})
}

func (s *Store) ActiveOwner(ctx context.Context, owner string) (bool, error) {
	k := user.Key(owner)
	if k == "" {
		return false, nil
	}
	var n int
	err := s.read.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE active = 1 AND (username_key = $1 OR email_key = $1 OR id = $1)`, k).Scan(&n)
	return n > 0, err
}

// groupIDs resolves group names to ids; a missing name is ErrNotFound naming it.
func groupIDs(ctx context.Context, tx execer, names []string) ([]string, error) {
	ids := make([]string, 0, len(names))
	for _, n := range names {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM user_groups WHERE name_key = $1`, user.Key(n)).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return nil, fmt.Errorf("%w: no group is named %q", store.ErrNotFound, n)
		}
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// setUserGroups moves a user's memberships from the names before to after: added
// ones are tagged source, removed ones go whatever added them.
func setUserGroups(ctx context.Context, tx execer, userID string, before, after []string, source string, at time.Time) error {
	has := func(list []string, n string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return user.Key(x) == user.Key(n) })
	}
	var add, remove []string
	for _, n := range after {
		if !has(before, n) {
			add = append(add, n)
		}
	}
	for _, n := range before {
		if !has(after, n) {
			remove = append(remove, n)
		}
	}
	addIDs, err := groupIDs(ctx, tx, add)
	if err != nil {
		return err
	}
	for _, gid := range addIDs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id, source, created_at) VALUES ($1,$2,$3,$4) ON CONFLICT DO NOTHING`,
			gid, userID, source, micros(at)); err != nil {
			return err
		}
	}
	for _, n := range remove {
		if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE user_id = $1 AND group_id IN (SELECT id FROM user_groups WHERE name_key = $2)`,
			userID, user.Key(n)); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) SyncUserGroups(ctx context.Context, userID, source string, names []string, at time.Time) error {
	return mapErr(s.tx(ctx, func(tx *sql.Tx) error {
		want := map[string]bool{}
		for _, n := range names {
			k := user.Key(n)
			if k == "" || want[k] {
				continue
			}
			want[k] = true
			if _, err := tx.ExecContext(ctx, `INSERT INTO user_groups (id, name, name_key, display_name, source, external_id, created_at, updated_at)
				VALUES ($1,$2,$3,'',$4,'',$5,$5) ON CONFLICT (name_key) DO NOTHING`, secret.NewID("grp"), n, k, source, micros(at)); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, user_id, source, created_at)
				SELECT id, $2, $3, $4 FROM user_groups WHERE name_key = $1 ON CONFLICT DO NOTHING`, k, userID, source, micros(at)); err != nil {
				return err
			}
		}
		rows, err := tx.QueryContext(ctx, `SELECT g.name_key, g.id FROM group_members m JOIN user_groups g ON g.id = m.group_id WHERE m.user_id = $1 AND m.source = $2`, userID, source)
		if err != nil {
			return err
		}
		type kv struct{ key, id string }
		current, err := collect(rows, func(r *sql.Rows) (kv, error) {
			var x kv
			return x, r.Scan(&x.key, &x.id)
		})
		if err != nil {
			return err
		}
		for _, c := range current {
			if !want[c.key] {
				if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = $1 AND user_id = $2`, c.id, userID); err != nil {
					return err
				}
			}
		}
		return nil
	}))
}
