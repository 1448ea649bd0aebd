package broker

import "time"

// What a broker believes of the records its peers relay.
//
// A session's peer is authenticated (package linkauth), so only brokers of
// the network send records. They relay what other brokers announce, and
// announcements are not signed at their origin: a broker that holds the
// network's credentials could forge another broker's. What limits the
// harm is checked where records are accepted: a cost update speaks only
// for links its origin is an end of (checkLinkStateLocked), message dedup
// is kept per session (dedupTable), and a version's epoch, which is its
// origin's start time, may not lie further in the future than clocks
// plausibly disagree, so a forged epoch is overtaken by the origin's next
// restart rather than holding forever.

// maxEpochAhead is how far ahead of this broker's clock an announced
// epoch may be.
const maxEpochAhead = 10 * time.Minute

// plausible reports whether a version's epoch could be a real start time.
func (v version) plausible(now time.Time) bool {
	return v.Epoch <= uint64(now.Add(maxEpochAhead).UnixNano())
}
