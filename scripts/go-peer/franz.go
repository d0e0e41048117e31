package main

// franz-go (github.com/twmb/franz-go/pkg/kgo), run the way its documentation gives for
// throughput: Client.Produce, asynchronous, one promise (callback) for every record, the
// client bounding what waits in it (MaxBufferedRecords: Produce blocks when it is full); and
// a group-less consumer of assigned partitions (ConsumePartitions) polled with PollFetches.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func franzCodec(c string) kgo.CompressionCodec {
	switch c {
	case "lz4":
		return kgo.Lz4Compression()
	case "gzip":
		return kgo.GzipCompression()
	case "snappy":
		return kgo.SnappyCompression()
	case "zstd":
		return kgo.ZstdCompression()
	default:
		return kgo.NoCompression()
	}
}

// recordSlab: Records handed out from slices of this many, one allocation per slice.
const recordSlab = 1024

func franzProduce(a *args) (report, error) {
	p, err := loadPayload(a)
	if err != nil {
		return report{}, err
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(a.brokers...),
		kgo.DefaultProduceTopic(a.topic),
		// Record.Partition is the partition: record i goes to i % partitions.
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(linger),
		kgo.ProducerBatchMaxBytes(batchBytes),
		// acks=all; idempotence is franz-go's default (it requires acks=all).
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.MaxBufferedRecords(queued),
		kgo.ProducerBatchCompression(franzCodec(a.compression)),
	)
	if err != nil {
		return report{}, fmt.Errorf("franz-go: %w", err)
	}
	defer cl.Close()
	config := fmt.Sprintf("franz-go %s: async Produce with a promise per record, ManualPartitioner (record i to partition i %% %d), "+
		"ProducerLinger 5 ms, ProducerBatchMaxBytes 1 MiB, RequiredAcks AllISRAcks (acks=all), idempotent (default), "+
		"MaxBufferedRecords 100000, compression %s, other options default",
		moduleVersion("github.com/twmb/franz-go"), a.partitions, a.compression)

	var (
		mu       sync.Mutex
		lat      = make([]uint32, 0, a.records)
		failed   atomic.Uint64
		firstErr atomic.Pointer[error]
		acked    sync.WaitGroup
	)
	// Called serially by the client once the record is acknowledged or has failed; the
	// record's Timestamp is when it was handed to Produce.
	promise := func(r *kgo.Record, err error) {
		defer acked.Done()
		if err != nil {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, &err)
			return
		}
		l := micros(time.Since(r.Timestamp))
		mu.Lock()
		lat = append(lat, l)
		mu.Unlock()
	}
	var ar arena
	var slab []kgo.Record
	parts := uint64(a.partitions)
	ctx := context.Background()
	t0 := time.Now()
	for i := uint64(0); i < a.records; i++ {
		if d := pace(t0, i, a.rate); d > 0 {
			time.Sleep(d)
		}
		if len(slab) == 0 {
			slab = make([]kgo.Record, recordSlab)
		}
		r := &slab[0]
		slab = slab[1:]
		r.Key = ar.key(p, i)
		r.Value = ar.value(p, i)
		r.Partition = int32(i % parts)
		r.Timestamp = time.Now()
		acked.Add(1)
		cl.Produce(ctx, r, promise)
	}
	fctx, cancel := context.WithTimeout(ctx, runLimit)
	defer cancel()
	if err := cl.Flush(fctx); err != nil {
		return report{}, fmt.Errorf("franz-go: flush: %w", err)
	}
	acked.Wait()
	elapsed := time.Since(t0)
	if n := failed.Load(); n > 0 {
		return report{}, fmt.Errorf("franz-go: %d records not acknowledged, the first: %v", n, *firstErr.Load())
	}
	mu.Lock()
	defer mu.Unlock()
	return finish(a, a.records, producedBytes(a), elapsed, lat, config), nil
}

func franzConsume(a *args) (report, error) {
	t0 := time.Now()
	offsets := make(map[int32]kgo.Offset, a.partitions)
	for part := 0; part < a.partitions; part++ {
		offsets[int32(part)] = kgo.NewOffset().AtStart()
	}
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(a.brokers...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{a.topic: offsets}),
		kgo.FetchMaxWait(maxWait),
	)
	if err != nil {
		return report{}, fmt.Errorf("franz-go: %w", err)
	}
	defer cl.Close()
	config := fmt.Sprintf("franz-go %s: ConsumePartitions (%d partitions from the start, no group), PollFetches, FetchMaxWait 100 ms, "+
		"fetch sizes default (FetchMaxBytes 50 MiB, FetchMaxPartitionBytes 1 MiB), CRCs checked (default)",
		moduleVersion("github.com/twmb/franz-go"), a.partitions)
	ctx, cancel := context.WithTimeout(context.Background(), runLimit)
	defer cancel()
	seen := newSeenSet(a.records)
	lat := make([]uint32, 0, a.records)
	var n, bytes uint64
	var bad error
	for n < a.records && bad == nil {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return report{}, fmt.Errorf("franz-go: only %d of %d records read in %v", n, a.records, runLimit)
		}
		if fs.IsClientClosed() {
			return report{}, errors.New("franz-go: the client closed")
		}
		fs.EachError(func(t string, part int32, err error) {
			// The client retries what can be retried; say what happened.
			fmt.Fprintf(os.Stderr, "go-peer: franz-go: fetch %s/%d: %v\n", t, part, err)
		})
		// After a poll (which may have waited), the clock is read for the first record and
		// then every clockEvery records.
		left, nowUs := 0, int64(0)
		fs.EachRecord(func(r *kgo.Record) {
			if bad != nil {
				return
			}
			if err := seen.add(r.Value, r.Partition, r.Offset); err != nil {
				bad = err
				return
			}
			n++
			bytes += uint64(len(r.Key) + len(r.Value))
			if left == 0 {
				nowUs, left = time.Now().UnixMicro(), clockEvery
			}
			left--
			lat = append(lat, receiptLatency(nowUs, r.Timestamp.UnixMilli()))
		})
	}
	if bad != nil {
		return report{}, fmt.Errorf("franz-go: %w", bad)
	}
	// n distinct sequence numbers, each below records: every one of 0..records-1, once.
	return finish(a, n, bytes, time.Since(t0), lat, config), nil
}
