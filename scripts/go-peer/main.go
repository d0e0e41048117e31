// Command go-peer: the Go clients of the side-by-side harness (`kafkit-peers compare`),
// franz-go (github.com/twmb/franz-go/pkg/kgo) and segmentio/kafka-go, each run the way its
// documentation gives for throughput, with the settings every producer of the harness gets
// (crates/kafkit-peers/src/peers.rs, FAIR): linger 5 ms, batches of up to 1 MiB, acks=all,
// idempotent where supported (franz-go; kafka-go has no idempotent producer), at most
// 100,000 records waiting in the client, record i to partition i % partitions.
//
//	go-peer <franz-go|kafka-go> <produce|consume> TOPIC [--brokers 127.0.0.1:9092]
//	    [--records 1000000] [--record-size 100] [--key-size 16] [--compression none]
//	    [--payload-text PATH] [--partitions 6] [--json]
//
// produce sends records 0..N-1, made as payload.rs makes them (payload.go), and reports
// latency from send to acknowledgement. consume reads N records from the start of every
// partition (no consumer group), checks that their sequence numbers (a value's first 12
// digits) are 0..N-1, each seen once, and reports latency from the record's timestamp to
// its receipt. The report (one JSON object with --json, the last line on stdout) has the
// fields of the Rust peers' (crates/kafkit-cli/src/report.rs) plus "client" and "config".
// Any error: a message on stderr ("go-peer: error: ...") and exit status 1.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	// linger: how long a partition's batch waits for more records (5 ms).
	linger = 5 * time.Millisecond
	// batchBytes: most bytes in one record batch (1 MiB).
	batchBytes = 1 << 20
	// queued: most records waiting in the client, sent but not acknowledged (100,000).
	queued = 100_000
	// maxWait: how long a consumer's fetch waits for data at the broker (100 ms, as the
	// Rust peers and kafkit perf's readers).
	maxWait = 100 * time.Millisecond
	// runLimit: the longest a produce flush or a consume may take before it is an error (300 s).
	runLimit = 300 * time.Second
	// clockEvery: records between two readings of the clock when consuming (report.rs's
	// CLOCK_EVERY): the clock is read for the first record after a wait and then every 64.
	clockEvery = 64
)

type args struct {
	client      string // franz-go or kafka-go
	op          string // produce or consume
	topic       string
	brokers     []string
	records     uint64 // records to produce or consume
	recordSize  int    // value bytes per record (produce)
	keySize     int    // key bytes per record (produce; 0: keyless)
	compression string // none, lz4, gzip, snappy or zstd (produce)
	payloadText string // the text values are cut from (produce); see payload.go
	partitions  int    // partitions of the topic, which exists already (6)
	rate        uint64 // records per second to send at (produce; 0: as fast as the client takes them)
	json        bool
}

const usage = `usage: go-peer <franz-go|kafka-go> <produce|consume> TOPIC [--brokers HOST:PORT[,...]]
    [--records N] [--record-size BYTES] [--key-size BYTES] [--compression none|lz4|gzip|snappy|zstd]
    [--payload-text PATH] [--partitions N] [--rate RECORDS_PER_SEC] [--json]`

func parseArgs(argv []string) (*args, error) {
	if len(argv) < 3 {
		return nil, errors.New("missing arguments\n" + usage)
	}
	a := &args{client: argv[0], op: argv[1], topic: argv[2]}
	switch a.client {
	case "franz-go", "kafka-go":
	default:
		return nil, fmt.Errorf("unknown client %q: franz-go or kafka-go\n%s", a.client, usage)
	}
	switch a.op {
	case "produce", "consume":
	default:
		return nil, fmt.Errorf("unknown command %q: produce or consume\n%s", a.op, usage)
	}
	if a.topic == "" || strings.HasPrefix(a.topic, "-") {
		return nil, fmt.Errorf("bad topic %q\n%s", a.topic, usage)
	}
	fs := flag.NewFlagSet("go-peer", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	brokers := fs.String("brokers", "127.0.0.1:9092", "bootstrap brokers, comma-separated")
	records := fs.Uint64("records", 1_000_000, "records to produce or consume")
	fs.IntVar(&a.recordSize, "record-size", 100, "value bytes per record: a 12-digit sequence number, then text")
	fs.IntVar(&a.keySize, "key-size", defaultKeySize, "key bytes per record (0: keyless)")
	fs.IntVar(&a.keySize, "keys", defaultKeySize, "alias of --key-size")
	fs.StringVar(&a.compression, "compression", "none", "none, lz4, gzip, snappy or zstd")
	fs.StringVar(&a.payloadText, "payload-text", "", "the text values are cut from: raw, or an lz4 frame")
	fs.IntVar(&a.partitions, "partitions", 6, "partitions of the topic")
	fs.Uint64Var(&a.rate, "rate", 0, "records per second to send at (produce; 0: as fast as the client takes them)")
	fs.BoolVar(&a.json, "json", false, "print the report as one JSON object")
	if err := fs.Parse(argv[3:]); err != nil {
		return nil, fmt.Errorf("%v\n%s", err, usage)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q\n%s", fs.Arg(0), usage)
	}
	for _, b := range strings.Split(*brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			a.brokers = append(a.brokers, b)
		}
	}
	if len(a.brokers) == 0 {
		return nil, errors.New("--brokers names no broker")
	}
	a.records = *records
	if a.records == 0 {
		return nil, errors.New("--records must be at least 1")
	}
	if a.records > maxRecords {
		return nil, fmt.Errorf("at most %d records: values carry a %d-digit sequence number", maxRecords, seqDigits)
	}
	if a.partitions < 1 || a.partitions > math.MaxInt32 {
		return nil, fmt.Errorf("--partitions %d: at least 1", a.partitions)
	}
	if a.keySize < 0 {
		return nil, fmt.Errorf("--key-size %d: 0 (keyless) or more", a.keySize)
	}
	if a.recordSize < seqDigits {
		return nil, fmt.Errorf("values of %d B are too small: each starts with a %d-digit sequence number", a.recordSize, seqDigits)
	}
	switch a.compression {
	case "none", "lz4", "gzip", "snappy", "zstd":
	default:
		return nil, fmt.Errorf("unknown compression %q: none, lz4, gzip, snappy or zstd", a.compression)
	}
	return a, nil
}

// loadPayload: the records to produce, made from the text before the clock starts.
func loadPayload(a *args) (*payload, error) {
	text, source, err := loadText(a.payloadText)
	if err != nil {
		return nil, err
	}
	return newPayload(text, source, a.recordSize, a.keySize)
}

// producedBytes: key and value bytes of the produced records.
func producedBytes(a *args) uint64 {
	return a.records * uint64(a.recordSize+a.keySize)
}

// moduleVersion: the version of a module this binary was built with ("?" when unknown).
func moduleVersion(path string) string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == path {
				return d.Version
			}
		}
	}
	return "?"
}

// ---- the report: report.rs's fields ----

type latency struct {
	Of     string  `json:"of"`
	P50ms  float64 `json:"p50_ms"`
	P99ms  float64 `json:"p99_ms"`
	P999ms float64 `json:"p999_ms"`
}

type report struct {
	Workload         string  `json:"workload"`
	Client           string  `json:"client"`
	Records          uint64  `json:"records"`
	Bytes            uint64  `json:"bytes"`
	Seconds          float64 `json:"seconds"`
	RecordsPerSec    float64 `json:"records_per_sec"`
	MBPerSec         float64 `json:"mb_per_sec"`
	Latency          latency `json:"latency"`
	ClientCPUSeconds float64 `json:"client_cpu_seconds"`
	CPUusPerRecord   float64 `json:"cpu_us_per_record"`
	CPUOf            string  `json:"cpu_of"`
	PeakRSSBytes     uint64  `json:"peak_rss_bytes"`
	Config           string  `json:"config"`
}

// usageNow: CPU (user + system, all threads) of this process so far, and its peak resident
// memory in bytes: VmHWM of /proc/self/status (getrusage's ru_maxrss is the fallback), as
// report.rs's usage() reads them.
func usageNow() (time.Duration, uint64) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, 0
	}
	cpu := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	kib := uint64(ru.Maxrss)
	if s, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(s), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
				if v, err := strconv.ParseUint(f[1], 10, 64); err == nil {
					kib = v
				}
			}
		}
	}
	return cpu, kib * 1024
}

// percentiles: p50, p99 and p99.9 in ms of latencies in µs (sorted in place), as
// report.rs's percentiles() picks them (0 when there are none).
func percentiles(lat []uint32) [3]float64 {
	slices.Sort(lat)
	at := func(q float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		i := min(max(int(math.Ceil(float64(len(lat))*q)), 1), len(lat)) - 1
		return float64(lat[i]) / 1000
	}
	return [3]float64{at(0.50), at(0.99), at(0.999)}
}

func finish(a *args, records, bytes uint64, elapsed time.Duration, lat []uint32, config string) report {
	cpu, rss := usageNow()
	secs := max(elapsed.Seconds(), 1e-9)
	of := "send to acknowledgement"
	if a.op == "consume" {
		of = "record timestamp to receipt"
	}
	p := percentiles(lat)
	return report{
		Workload:         a.op,
		Client:           a.client,
		Records:          records,
		Bytes:            bytes,
		Seconds:          secs,
		RecordsPerSec:    float64(records) / secs,
		MBPerSec:         float64(bytes) / secs / 1e6,
		Latency:          latency{Of: of, P50ms: p[0], P99ms: p[1], P999ms: p[2]},
		ClientCPUSeconds: cpu.Seconds(),
		CPUusPerRecord:   cpu.Seconds() * 1e6 / float64(max(records, 1)),
		CPUOf:            "the whole process",
		PeakRSSBytes:     rss,
		Config:           config,
	}
}

func (r report) print(asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		_, err = fmt.Printf("%s\n", b)
		return err
	}
	_, err := fmt.Printf("%s (%s): %d records, %.0f records/s, %.1f MB/s, latency (%s) p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, client CPU %.2f s (%.2f us/record), peak RSS %.1f MiB; %s\n",
		r.Workload, r.Client, r.Records, r.RecordsPerSec, r.MBPerSec, r.Latency.Of, r.Latency.P50ms, r.Latency.P99ms,
		r.Latency.P999ms, r.ClientCPUSeconds, r.CPUusPerRecord, float64(r.PeakRSSBytes)/(1<<20), r.Config)
	return err
}

// micros: d in whole microseconds, clamped to a uint32.
// pace: how long until record i is due when records are sent at rate per second from t0
// (kafkit_cli::report::Pace); 0 when it is due already or rate is 0.
func pace(t0 time.Time, i, rate uint64) time.Duration {
	if rate == 0 {
		return 0
	}
	return time.Until(t0.Add(time.Duration(float64(i) * 1e9 / float64(rate))))
}

func micros(d time.Duration) uint32 {
	return uint32(min(max(d.Microseconds(), 0), math.MaxUint32))
}

// receiptLatency: µs from a record's timestamp (ms since the epoch) to now (µs since the epoch).
func receiptLatency(nowUs, tsMs int64) uint32 {
	return uint32(min(max(nowUs-tsMs*1000, 0), math.MaxUint32))
}

// seenSet: which sequence numbers 0..n-1 a consumer has read, safe for concurrent use.
type seenSet struct {
	words []uint64
	n     uint64
}

func newSeenSet(n uint64) *seenSet { return &seenSet{words: make([]uint64, (n+63)/64), n: n} }

// add notes the record with value v, or says why it is wrong.
func (s *seenSet) add(v []byte, partition int32, offset int64) error {
	seq, ok := parseSeq(v)
	if !ok {
		return fmt.Errorf("partition %d offset %d: the value does not start with a %d-digit sequence number (%d B)", partition, offset, seqDigits, len(v))
	}
	if seq >= s.n {
		return fmt.Errorf("partition %d offset %d: record %d, beyond the %d records asked for (does the topic hold more?)", partition, offset, seq, s.n)
	}
	bit := uint64(1) << (seq & 63)
	if atomic.OrUint64(&s.words[seq>>6], bit)&bit != 0 {
		return fmt.Errorf("partition %d offset %d: record %d read twice", partition, offset, seq)
	}
	return nil
}

func run(a *args) (report, error) {
	switch a.client + " " + a.op {
	case "franz-go produce":
		return franzProduce(a)
	case "franz-go consume":
		return franzConsume(a)
	case "kafka-go produce":
		return kafkaGoProduce(a)
	default:
		return kafkaGoConsume(a)
	}
}

func main() {
	a, err := parseArgs(os.Args[1:])
	if err == nil {
		var r report
		if r, err = run(a); err == nil {
			err = r.print(a.json)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-peer: error: %v\n", err)
		os.Exit(1)
	}
}
