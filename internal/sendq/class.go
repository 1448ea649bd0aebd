package sendq

import (
	"fmt"
	"time"
)

// Class is the priority class of what is queued. The zero value is
// Normal, the class of everything no rule names.
type Class uint8

const (
	Normal Class = iota
	High
	Low
	NumClasses
)

var classNames = [NumClasses]string{"normal", "high", "low"}

func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return fmt.Sprintf("class-%d", uint8(c))
}

// ParseClass reads a class's name: high, normal or low.
func ParseClass(name string) (Class, error) {
	for c, n := range classNames {
		if n == name {
			return Class(c), nil
		}
	}
	return 0, fmt.Errorf("unknown priority class %q (want high, normal or low)", name)
}

// serviceOrder is the classes from the highest.
var serviceOrder = [NumClasses]Class{High, Normal, Low}

// ServiceOrder lists the classes from the highest.
func ServiceOrder() [NumClasses]Class { return serviceOrder }

// below lists the classes under c, lowest first: the order they are
// evicted in to make room for c.
func (c Class) below() []Class { return belowClass[c] }

var belowClass = [NumClasses][]Class{High: {Low, Normal}, Normal: {Low}}

// How a queue that holds more than the Normal class serves its classes.
//
// Each take hands the writer at most a quantum of whole appends (the
// first of the take goes however large, and so does the first of a class
// that is due, below). What a writer has taken it sends, whatever comes
// after, so the quantum is what a higher class may wait behind: it is
// what the link sends in about TakeTime, within MinQuantum and
// MaxQuantum. The rate is measured while the queue stays backlogged: the
// bytes taken over PaceWindow or more, from one take to the next. A
// transport's own buffer makes the first takes of a backlog look fast, so
// the quantum no more than doubles from one window to the next. At
// 1 Mbit/s a take is then 2.5 KB; from 26 Mbit/s on, 64 KiB, the frame a
// queue of one class fills. Add what the transport itself holds below the
// queue. Within a take the classes are served from the highest, each from
// its oldest append, until the take is full.
//
// Starvation is bounded: a class that has data waiting and got nothing in
// StarveTakes-1 takes in a row goes first in the next, with at least one
// append and up to a whole take. So while it has data waiting, a lower
// class gets at least one message out in every StarveTakes takes, and on
// a link the higher classes saturate with messages much smaller than a
// take, about 1/StarveTakes of the bytes at least.
const (
	TakeTime    = 20 * time.Millisecond
	PaceWindow  = 5 * TakeTime
	MinQuantum  = 2 << 10
	MaxQuantum  = 64 << 10
	StarveTakes = 8
	// PacedTakeTime is a take's worth of a link whose rate is given
	// (TakeAtRate): its writer sends no faster than that rate anyway, so
	// takes can be small without the link waiting on the writer.
	PacedTakeTime = 2 * time.Millisecond
)

// pace updates the quantum at a classed take at now: when the last take
// left data behind, the writer has been sending it since, so its bytes
// over that time add to the window's sample of the link's rate. A take
// that emptied the queue ends the window unused: the writer was then
// faster than what came.
func (o *Queue) pace(now time.Time) {
	if o.fixed {
		return
	}
	if !o.backlog {
		o.winBytes, o.winTime = 0, 0
		return
	}
	o.winBytes += o.lastTake
	o.winTime += now.Sub(o.lastAt)
	if o.winTime < PaceWindow {
		return
	}
	rate := float64(o.winBytes) / o.winTime.Seconds()
	o.winBytes, o.winTime = 0, 0
	o.quantum = min(2*o.quantum, MaxQuantum, max(MinQuantum, int(rate*TakeTime.Seconds())))
}

// takeClassed appends to data at most a quantum of appends, in the order
// above, and returns it with the number of appends taken.
func (o *Queue) takeClassed(data []byte) ([]byte, int) {
	var order [NumClasses]Class
	var due [NumClasses]bool
	n := 0
	for pass := range 2 {
		for _, c := range serviceOrder {
			l := &o.lanes[c]
			if l.appends() == 0 || (l.waited >= StarveTakes-1) != (pass == 0) {
				continue
			}
			due[c] = pass == 0
			order[n] = c
			n++
		}
	}
	adds, full := 0, false
	for _, c := range order[:n] {
		l := &o.lanes[c]
		start, got := len(data), 0
		for l.appends() > 0 {
			end := l.ends[l.first]
			// The first append of a take goes, and the first of a due class.
			must := len(data) == 0 || (due[c] && got == 0)
			if !must && (full || len(data)+end-l.head > o.quantum) {
				full = true
				break
			}
			data = append(data, l.buf[l.head:end]...)
			l.head = end
			l.first++
			got++
		}
		adds += got
		o.queued -= len(data) - start
		if got > 0 {
			l.waited = 0
		} else {
			l.waited++
		}
		if l.appends() == 0 {
			l.reset(l.buf)
		} else if l.head > len(l.buf)-l.head {
			l.compact()
		}
	}
	return data, adds
}

// compact moves the appends not yet taken to the start of the lane's
// buffer; it copies fewer bytes than were taken since it last did, so
// that its cost stays in proportion to the bytes taken.
func (l *lane) compact() {
	n := copy(l.buf, l.buf[l.head:])
	l.buf = l.buf[:n]
	k := copy(l.ends, l.ends[l.first:])
	l.ends = l.ends[:k]
	for i := range l.ends {
		l.ends[i] -= l.head
	}
	l.head, l.first = 0, 0
}
