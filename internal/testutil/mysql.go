package testutil

import (
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// MySQLTestDB names a new database of a random name on the MySQL/MariaDB
// server that WAYLINE_TEST_MYSQL names ("mysql://root@tcp(127.0.0.1:PORT)/",
// as scripts/mariadb.sh start prints), for the store to create, and drops
// it when t ends. Without a server it skips t, or fails it when
// WAYLINE_REQUIRE_MYSQL is set, as `make test` does.
func MySQLTestDB(t testing.TB) string {
	t.Helper()
	base := os.Getenv("WAYLINE_TEST_MYSQL")
	if base == "" {
		if os.Getenv("WAYLINE_REQUIRE_MYSQL") != "" {
			t.Fatal("WAYLINE_REQUIRE_MYSQL is set but WAYLINE_TEST_MYSQL is not")
		}
		t.Skip("WAYLINE_TEST_MYSQL is not set: no MySQL server to test against (scripts/mariadb.sh start runs one)")
	}
	cfg, err := mysql.ParseDSN(strings.TrimPrefix(base, "mysql://"))
	if err != nil {
		t.Fatalf("WAYLINE_TEST_MYSQL: %v", err)
	}
	cfg.DBName = fmt.Sprintf("wayline_test_%016x", rand.Uint64())
	t.Cleanup(func() {
		server := cfg.Clone()
		server.DBName = ""
		conn, err := mysql.NewConnector(server)
		if err == nil {
			db := sql.OpenDB(conn)
			_, err = db.Exec("DROP DATABASE IF EXISTS `" + cfg.DBName + "`")
			db.Close()
		}
		if err != nil {
			t.Errorf("drop test database %s: %v", cfg.DBName, err)
		}
	})
	return "mysql://" + cfg.FormatDSN()
}
