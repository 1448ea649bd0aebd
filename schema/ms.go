package schema

import "time"

// FormatMs writes d in milliseconds exactly as report documents do, so that
// views built elsewhere compare equal to the documents.
func FormatMs(d time.Duration) string { return string(appendMs(nil, d)) }
