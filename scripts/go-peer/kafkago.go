package main

// segmentio/kafka-go, run the way its documentation gives for throughput: a Writer with
// Async set (WriteMessages returns at once; Completion is called for every batch written),
// given the records in slices of writeSlice messages, at most queued records unacknowledged;
// and one group-less Reader per partition (ReaderConfig.Partition), read with ReadMessage.
// kafka-go has no idempotent producer.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// writeSlice: messages per WriteMessages call (1,024): WriteMessages sorts its messages into
// partition batches under the Writer's locks once per call, so larger slices cost less per
// record; the slice is much smaller than a batch, so it adds nothing to the lingering.
const writeSlice = 1024

func kafkaGoCodec(c string) kafka.Compression {
	switch c {
	case "lz4":
		return kafka.Lz4
	case "gzip":
		return kafka.Gzip
	case "snappy":
		return kafka.Snappy
	case "zstd":
		return kafka.Zstd
	default:
		return 0 // none
	}
}

func kafkaGoProduce(a *args) (report, error) {
	p, err := loadPayload(a)
	if err != nil {
		return report{}, err
	}
	var (
		mu       sync.Mutex
		room     = sync.NewCond(&mu)
		inflight int // records handed to WriteMessages, not yet completed
		lat      = make([]uint32, 0, a.records)
		failed   uint64
		firstErr error
		// set when the topic has fewer partitions than --partitions
		tooFew atomic.Int64
	)
	// kafka-go counts a message as its key and value plus 22 B (kafka-go's Message.totalSize).
	batchSize := batchBytes/(a.keySize+a.recordSize+22) + 1
	w := &kafka.Writer{
		Addr:  kafka.TCP(a.brokers...),
		Topic: a.topic,
		// Record i's intended partition, i % partitions, rides in WriterData (a small int:
		// no allocation); Message.Partition is read-only for writers.
		Balancer: kafka.BalancerFunc(func(m kafka.Message, partitions ...int) int {
			want, _ := m.WriterData.(int)
			if want >= len(partitions) {
				tooFew.Store(int64(len(partitions)))
				return partitions[want%len(partitions)]
			}
			return partitions[want]
		}),
		// A batch is cut at 1 MiB or after 5 ms, never by count (the default is 100 messages):
		// BatchSize is one more record than 1 MiB holds. Not larger: kafka-go allocates room
		// for BatchSize messages (about 150 B each) in every batch it starts.
		BatchSize:    batchSize,
		BatchBytes:   batchBytes,
		BatchTimeout: linger,
		RequiredAcks: kafka.RequireAll,
		Async:        true,
		Compression:  kafkaGoCodec(a.compression),
		// Called for every batch once written (or failed); each message's Time is when it
		// was handed to WriteMessages.
		Completion: func(msgs []kafka.Message, err error) {
			now := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				failed += uint64(len(msgs))
				if firstErr == nil {
					firstErr = err
				}
			} else {
				for i := range msgs {
					lat = append(lat, micros(now.Sub(msgs[i].Time)))
				}
			}
			inflight -= len(msgs)
			room.Broadcast()
		},
	}
	config := fmt.Sprintf("kafka-go %s: Writer with Async and a Completion callback, WriteMessages in slices of %d, "+
		"a Balancer sending record i to partition i %% %d, BatchTimeout 5 ms, BatchBytes 1 MiB, BatchSize %d (1 MiB of records, plus one), "+
		"RequiredAcks RequireAll (acks=all), not idempotent (kafka-go has no idempotent producer), "+
		"at most 100000 records unacknowledged, compression %s, other options default",
		moduleVersion("github.com/segmentio/kafka-go"), writeSlice, a.partitions, batchSize, a.compression)

	var ar arena
	msgs := make([]kafka.Message, 0, writeSlice)
	parts := uint64(a.partitions)
	ctx := context.Background()
	deadline := time.Now().Add(runLimit)
	send := func() error {
		k := len(msgs)
		mu.Lock()
		for inflight+k > queued && failed == 0 {
			room.Wait()
		}
		inflight += k
		mu.Unlock()
		// The Writer copies the messages into its batches: msgs can be reused.
		if err := w.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("kafka-go: %w", err)
		}
		msgs = msgs[:0]
		return nil
	}
	t0 := time.Now()
	for i := uint64(0); i < a.records; i++ {
		if d := pace(t0, i, a.rate); d > 0 {
			// Paced: hand over what waits before sleeping, so no record waits for a
			// slice to fill.
			if len(msgs) > 0 {
				if err := send(); err != nil {
					_ = w.Close()
					return report{}, err
				}
			}
			time.Sleep(pace(t0, i, a.rate))
		}
		msgs = append(msgs, kafka.Message{
			Key:        ar.key(p, i),
			Value:      ar.value(p, i),
			WriterData: int(i % parts),
			Time:       time.Now(),
		})
		if len(msgs) == writeSlice || i+1 == a.records {
			if err := send(); err != nil {
				_ = w.Close()
				return report{}, err
			}
		}
	}
	// Wait for every completion (the Writer flushes its last batches after BatchTimeout).
	stop := time.AfterFunc(time.Until(deadline), func() { mu.Lock(); room.Broadcast(); mu.Unlock() })
	mu.Lock()
	for inflight > 0 && time.Now().Before(deadline) {
		room.Wait()
	}
	left := inflight
	mu.Unlock()
	stop.Stop()
	elapsed := time.Since(t0)
	if err := w.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	mu.Lock()
	defer mu.Unlock()
	if n := tooFew.Load(); n > 0 {
		return report{}, fmt.Errorf("kafka-go: topic %s has %d partitions, fewer than --partitions %d", a.topic, n, a.partitions)
	}
	if failed > 0 {
		return report{}, fmt.Errorf("kafka-go: %d records not acknowledged, the first error: %v", failed, firstErr)
	}
	if left > 0 {
		return report{}, fmt.Errorf("kafka-go: %d records not acknowledged in %v", left, runLimit)
	}
	return finish(a, a.records, producedBytes(a), elapsed, lat, config), nil
}

func kafkaGoConsume(a *args) (report, error) {
	t0 := time.Now()
	config := fmt.Sprintf("kafka-go %s: one Reader per partition (%d, ReaderConfig.Partition, no group) from FirstOffset, ReadMessage, "+
		"MinBytes 1, MaxBytes 1 MiB, MaxWait 100 ms, QueueCapacity 100 (default), other options default",
		moduleVersion("github.com/segmentio/kafka-go"), a.partitions)
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	seen := newSeenSet(a.records)
	var (
		total    atomic.Uint64
		bytes    atomic.Uint64
		done     = make(chan struct{})
		doneOnce sync.Once
		errs     = make(chan error, a.partitions)
		wg       sync.WaitGroup
		lats     = make([][]uint32, a.partitions)
	)
	for part := 0; part < a.partitions; part++ {
		r := kafka.NewReader(kafka.ReaderConfig{
			Brokers:   a.brokers,
			Topic:     a.topic,
			Partition: part,
			MinBytes:  1,
			MaxBytes:  batchBytes,
			MaxWait:   maxWait,
		})
		if err := r.SetOffset(kafka.FirstOffset); err != nil {
			cancel()
			wg.Wait()
			return report{}, fmt.Errorf("kafka-go: partition %d: %w", part, err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.Close()
			lat := make([]uint32, 0, a.records/uint64(a.partitions)+1024)
			defer func() { lats[part] = lat }()
			var b uint64
			defer func() { bytes.Add(b) }()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() == nil {
						errs <- fmt.Errorf("kafka-go: partition %d: %w", part, err)
					}
					return
				}
				// ReadMessage does not say whether it waited: the clock is read for every record.
				lat = append(lat, receiptLatency(time.Now().UnixMicro(), m.Time.UnixMilli()))
				if err := seen.add(m.Value, int32(m.Partition), m.Offset); err != nil {
					errs <- fmt.Errorf("kafka-go: %w", err)
					return
				}
				b += uint64(len(m.Key) + len(m.Value))
				if total.Add(1) == a.records {
					doneOnce.Do(func() { close(done) })
					return
				}
			}
		}()
	}
	var err error
	select {
	case <-done:
	case err = <-errs:
	case <-ctx.Done():
		err = fmt.Errorf("kafka-go: only %d of %d records read in %v", total.Load(), a.records, runLimit)
	}
	elapsed := time.Since(t0)
	cancel()
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	if err != nil {
		return report{}, err
	}
	n := total.Load()
	if n != a.records {
		return report{}, errors.New("kafka-go: the readers stopped early")
	}
	var lat []uint32
	for _, l := range lats {
		lat = append(lat, l...)
	}
	return finish(a, n, bytes.Load(), elapsed, lat, config), nil
}
