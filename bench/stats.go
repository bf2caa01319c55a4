package bench

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"net"
	"os"
	"sort"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// subBucketBits sets the histogram's precision: 2^subBucketBits buckets per power of two,
// so a recorded value is off by less than 1/128 (0.8%) of itself, as in HdrHistogram with
// two significant digits.
const subBucketBits = 7

// maxExponent bounds the buckets: values up to 2^(maxExponent+subBucketBits) microseconds
// (about 25 days) are kept apart, larger ones share the last bucket.
const maxExponent = 34

// Histogram records latencies in microseconds in logarithmic buckets: fixed memory (about
// 36 KiB) whatever the number of samples.
type Histogram struct {
	counts [(maxExponent + 1) << subBucketBits]uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func bucketIndex(v int64) int {
	if v < 1<<subBucketBits {
		return int(v)
	}
	e := bits.Len64(uint64(v)) - subBucketBits - 1 // v>>e is in [2^sub, 2^(sub+1))
	if e >= maxExponent {
		return len(Histogram{}.counts) - 1
	}
	return (e+1)<<subBucketBits + int(v>>e) - 1<<subBucketBits
}

// bucketRange is the half-open range [lo, hi) of the values that fall into bucket i.
func bucketRange(i int) (lo, hi int64) {
	if i < 2<<subBucketBits {
		return int64(i), int64(i) + 1
	}
	e := i>>subBucketBits - 1
	m := int64(i&(1<<subBucketBits-1) + 1<<subBucketBits)
	return m << e, (m + 1) << e
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	v := d.Microseconds()
	if v < 0 {
		v = 0
	}
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.counts[bucketIndex(v)]++
	h.n++
	h.sum += float64(v)
}

// Merge adds the samples of o.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Mean is the mean latency.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum/float64(h.n)) * time.Microsecond
}

// Max is the largest latency recorded.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

// Quantile returns the latency below which a fraction q of the samples fall (the sample of
// rank ceil(q*n)), to within the bucket precision.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, hi := bucketRange(i)
			v := lo + (hi-lo-1)/2
			v = min(max(v, h.min), h.max)
			return time.Duration(v) * time.Microsecond
		}
	}
	return h.Max()
}

// Recorder collects the latencies and errors of every operation kind; it is safe for
// concurrent use.
type Recorder struct {
	mu     sync.Mutex
	ops    map[string]*Histogram
	errors map[string]map[string]uint64
	sample map[string]string // the first error message of each operation
	bytes  map[string]uint64
	total  uint64 // successes and errors, for the progress line
	errs   uint64
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{ops: map[string]*Histogram{}, errors: map[string]map[string]uint64{}, sample: map[string]string{}, bytes: map[string]uint64{}}
}

// Success records a verified operation that took d and moved n bytes of message data.
func (r *Recorder) Success(op string, d time.Duration, n int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.ops[op]
	if h == nil {
		h = &Histogram{}
		r.ops[op] = h
	}
	h.Record(d)
	r.bytes[op] += uint64(n)
	r.total++
}

// Failure records a failed operation under the kind of its error.
func (r *Recorder) Failure(op string, err error) {
	kind := ErrorKind(err)
	r.mu.Lock()
	defer r.mu.Unlock()
	m := r.errors[op]
	if m == nil {
		m = map[string]uint64{}
		r.errors[op] = m
	}
	m[kind]++
	if _, ok := r.sample[op]; !ok {
		r.sample[op] = err.Error()
	}
	r.total++
	r.errs++
}

// Totals returns the number of operations and of errors so far.
func (r *Recorder) Totals() (ops, errs uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.total, r.errs
}

// ErrorKind names the class of err for the report: no, bad, bye, protocol, verify,
// timeout, connection, and for LMTP smtp-4xx or smtp-5xx (a temporary or permanent
// refusal, RFC 5321 4.2.1).
func ErrorKind(err error) string {
	var se *ServerError
	var pe *ProtocolError
	var ve *VerifyError
	var ne net.Error
	var smtpErr *smtp.SMTPError
	switch {
	case errors.As(err, &smtpErr):
		return fmt.Sprintf("smtp-%dxx", smtpErr.Code/100)
	case errors.As(err, &se):
		switch se.Status {
		case "NO":
			return "no"
		case "BAD":
			return "bad"
		}
		return "bye"
	case errors.As(err, &ve):
		return "verify"
	case errors.As(err, &pe):
		return "protocol"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return "connection"
}

// opNames returns the recorded operation names, sorted.
func (r *Recorder) opNames() []string {
	seen := map[string]bool{}
	for op := range r.ops {
		seen[op] = true
	}
	for op := range r.errors {
		seen[op] = true
	}
	names := make([]string, 0, len(seen))
	for op := range seen {
		names = append(names, op)
	}
	sort.Strings(names)
	return names
}
