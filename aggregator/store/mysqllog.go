package store

import (
	"fmt"
	"log/slog"
	"strings"

	"github.com/go-sql-driver/mysql"
)

// The MySQL driver logs what it recovers from by itself (a pooled
// connection the server closed, which it drops and replaces) through a
// logger of its own, to stderr. Its lines go to slog instead, at debug
// level: the store reports the errors that matter with its own.
func init() {
	mysql.SetLogger(driverLog{})
}

type driverLog struct{}

func (driverLog) Print(v ...any) {
	slog.Debug("mysql driver", slog.String("msg", strings.TrimSpace(fmt.Sprint(v...))))
}
