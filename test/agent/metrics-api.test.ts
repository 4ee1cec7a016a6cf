// test-unit: needs no root and no kernel (make test-unit).
// AgentMetrics without a loaded bae: the kernel's series are left out and bae_up says so, the
// gauges other parts of the agent set are on the page, and --metrics' address parser.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { AgentMetrics, parseMetricsListen } from '../../src/agent';
import { UsageError } from '../../src/errors';
import { parseExposition, sampleValue } from '../lib/prom-text';

describe('agent metrics without a kernel', () => {
  test('a scrape that cannot read bae reports bae_up 0, counts the failure and leaves the kernel series out', async () => {
    const pinDir = fs.mkdtempSync(path.join(os.tmpdir(), 'bae-test-nopins-'));
    try {
      const m = new AgentMetrics({ pinDir, processMetrics: false });
      const first = parseExposition(await m.exposition());
      const second = parseExposition(await m.exposition());
      assert.equal(sampleValue(first, 'bae_up'), 0);
      assert.equal(sampleValue(first, 'bae_kernel_read_errors_total'), 1);
      assert.equal(sampleValue(second, 'bae_kernel_read_errors_total'), 2);
      for (const name of ['bae_packets_total', 'bae_parse_outcomes_total', 'bae_policy_matched_packets_total', 'bae_ringbuf_events_lost_total']) {
        assert.deepEqual(second.get(name)!.samples, [], `${name} has no sample without a kernel`);
      }
      assert.equal(second.get('bae_blocks_active')!.samples.length, 0);
      assert.equal(second.has('bae_delay_line_frames_held'), false, 'no delay line, no delay-line series');
      assert.equal(second.has('process_cpu_seconds_total'), false);
    } finally {
      fs.rmSync(pinDir, { recursive: true, force: true });
    }
  });

  test('the bus and the detector set their series through the API; the delay line is read at scrape time', async () => {
    let received = 0;
    const m = new AgentMetrics({
      pinDir: '/nonexistent/bae-test',
      processMetrics: false,
      delayLine: () => ({
        kernel: { redirected: 2n ** 40n, noSocket: 3n },
        line: { received: ++received, transmitted: 4, overflow: 0, duplicated: 0, reordered: 0, inFlight: 7, txErrors: 0, txDropped: 0, lateDropped: 1 },
      }),
    });
    m.setBusConnected(true);
    m.setBusLag(0.25);
    m.setBusBuffered(12);
    m.countBusEventsDropped(5);
    m.countAnomaly('packets_per_second');
    m.countAnomaly('packets_per_second');
    m.countAnomaly('bytes_per_second');
    const page = parseExposition(await m.exposition());
    assert.equal(sampleValue(page, 'bae_bus_connected'), 1);
    assert.equal(sampleValue(page, 'bae_bus_lag_seconds'), 0.25);
    assert.equal(sampleValue(page, 'bae_bus_events_buffered'), 12);
    assert.equal(sampleValue(page, 'bae_bus_events_dropped_total'), 5);
    assert.equal(sampleValue(page, 'bae_anomalies_total', { metric: 'packets_per_second' }), 2);
    assert.equal(sampleValue(page, 'bae_anomalies_total', { metric: 'bytes_per_second' }), 1);
    assert.equal(sampleValue(page, 'bae_delay_line_redirected_frames_total'), 2 ** 40);
    assert.equal(sampleValue(page, 'bae_delay_line_frames_held'), 7);
    assert.equal(sampleValue(page, 'bae_delay_line_late_dropped_frames_total'), 1);
    assert.equal(sampleValue(page, 'bae_delay_line_received_frames_total'), 1, 'read once per scrape');
    assert.equal(sampleValue(parseExposition(await m.exposition()), 'bae_delay_line_received_frames_total'), 2);
    m.setBusConnected(false);
    assert.equal(sampleValue(parseExposition(await m.exposition()), 'bae_bus_connected'), 0);
  });

  test('--metrics takes HOST:PORT, [IPv6]:PORT and port 0, and refuses anything else naming the form', () => {
    assert.deepEqual(parseMetricsListen('127.0.0.1:9464'), { host: '127.0.0.1', port: 9464 });
    assert.deepEqual(parseMetricsListen('[::1]:0'), { host: '::1', port: 0 });
    assert.deepEqual(parseMetricsListen('localhost:80'), { host: 'localhost', port: 80 });
    for (const bad of ['9464', '127.0.0.1', '127.0.0.1:', ':9464', '::1:9464', '127.0.0.1:65536', 'host:port', '[::1]']) {
      assert.throws(() => parseMetricsListen(bad), (e: unknown) => e instanceof UsageError && e.message.startsWith(`--metrics '${bad}': expected HOST:PORT`), bad);
    }
  });
});
