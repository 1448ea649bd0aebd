package schema

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

// The SQL schema is a list of migrations per dialect, one file each, named
// NNNN_name.sql, under sql/<dialect>/. Both dialects describe the same
// tables; a change to one is made to the other in a migration of the same
// number.
//
//go:embed sql/mysql/*.sql sql/sqlite/*.sql
var sqlFiles embed.FS

// Migration is one step of the SQL schema.
type Migration struct {
	Version int    // from the file name's number: 1 for 0001_init.sql
	Name    string // the rest of the file name: "init"
	SQL     string // the statements, each ending with a semicolon
}

// Migrations returns the migrations of a dialect, "mysql" (also MariaDB) or
// "sqlite", in the order they apply. It fails for an unknown dialect, and
// for a file whose name has no version or repeats one (a packaging mistake,
// caught by the tests).
func Migrations(dialect string) ([]Migration, error) {
	dir := path.Join("sql", dialect)
	entries, err := fs.ReadDir(sqlFiles, dir)
	if err != nil || dialect == "" || strings.ContainsAny(dialect, "./") {
		return nil, fmt.Errorf("schema: no SQL dialect %q (have mysql, sqlite)", dialect)
	}
	var out []Migration
	seen := map[int]string{}
	for _, e := range entries {
		num, name, ok := strings.Cut(strings.TrimSuffix(e.Name(), ".sql"), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 || name == "" {
			return nil, fmt.Errorf("schema: migration %s/%s: want NNNN_name.sql", dialect, e.Name())
		}
		if other, dup := seen[v]; dup {
			return nil, fmt.Errorf("schema: migrations %s and %s of %s share version %d", other, e.Name(), dialect, v)
		}
		seen[v] = e.Name()
		text, err := fs.ReadFile(sqlFiles, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("schema: migration %s/%s: %w", dialect, e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: name, SQL: string(text)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}
