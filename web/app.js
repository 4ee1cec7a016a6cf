// The live view's page (docs/web.md): Preact components written with htm, charts by uPlot, all
// bundled by esbuild (scripts/build-web.mjs) into dist/web. Everything it shows arrives pushed
// over one EventSource (/api/stream); it asks the server for nothing but its session and actions.
import { h, render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import './app.css';
import { Nodes } from './nodes.js';

const html = htm.bind(h);
const HISTORY = 240; // chart points kept: one minute at four pushes a second
const PAGE = 25;
const SIZE_BUCKETS = ['<64', '64-127', '128-255', '256-511', '512-1023', '1024-2047', '2048-4095', '>=4096'];
// Inter-arrival buckets by decade (docs/profiles.md "Inter-arrival histogram").
const IAT_BUCKETS = ['<10us', '10-100us', '100us-1ms', '1-10ms', '10-100ms', '100ms-1s', '1-10s', '>=10s'];

const num = (s) => (s === undefined || s === null ? 0 : Number(s));
function human(n) {
  n = num(n);
  if (n < 10000) return String(n);
  const units = ['k', 'M', 'G', 'T'];
  let u = -1;
  while (n >= 1000 && u < units.length - 1) { n /= 1000; u++; }
  return n.toFixed(n < 10 ? 1 : 0) + units[u];
}
function age(ns) {
  const ms = Math.max(0, Math.floor(num(ns) / 1e6));
  if (ms < 1000) return ms + 'ms';
  const s = Math.floor(ms / 1000);
  return s < 60 ? s + 's' : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** A uPlot chart that follows `data` ([xs, ...ys]); created once per set of series. */
// Bars of two series stand side by side (A->B left of its bucket, B->A right), not on top of each other.
function Chart({ title, labels, data, height = 150, bars = false, xLabels }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const width = Math.max(260, el.current.clientWidth || 400);
    const colors = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2'];
    const opts = {
      title, width, height,
      scales: { x: { time: !bars } },
      series: [{}, ...labels.map((label, i) => ({ label, stroke: colors[i % colors.length], width: 1.5, ...(bars ? { fill: colors[i % colors.length] + '55', paths: uPlot.paths.bars({ size: [0.4, 40], align: labels.length === 2 ? (i === 0 ? -1 : 1) : 0 }) } : {}) }))],
      axes: bars ? [{ values: (_u, vals) => vals.map((v) => xLabels?.[v] ?? '') }, {}] : [{}, {}],
      legend: { live: false },
    };
    plot.current = new uPlot(opts, data, el.current);
    return () => plot.current.destroy();
  }, [labels.join('|'), bars]);
  useEffect(() => { plot.current?.setData(data); }, [data]);
  return html`<div class="chart" ref=${el}></div>`;
}

/** Rates per second between successive samples of counters. */
function pushRates(hist, t, counters) {
  const prev = hist.last;
  hist.last = { t, counters };
  if (!prev || t <= prev.t) return;
  const dt = t - prev.t;
  hist.xs.push(t);
  Object.keys(counters).forEach((k, i) => {
    (hist.ys[i] ??= []).push(Math.max(0, (counters[k] - (prev.counters[k] ?? 0)) / dt));
  });
  if (hist.xs.length > HISTORY) { hist.xs.shift(); hist.ys.forEach((y) => y.shift()); }
}
const newHist = () => ({ xs: [], ys: [], last: null });

function Conversations({ view, query, setQuery, selected, select }) {
  const c = view?.conversations;
  const [filter, setFilter] = useState(query.filter);
  const nowNs = num(view?.nowNs);
  return html`<section id="conversations" class="wide">
    <h2>Conversations</h2>
    <div class="controls">
      <label>sort <select id="sort" value=${query.sort} onChange=${(e) => setQuery({ ...query, sort: e.target.value, offset: 0 })}>
        <option value="bytes">bytes</option><option value="packets">packets</option><option value="retrans">retransmissions</option>
      </select></label>
      <form onSubmit=${(e) => { e.preventDefault(); setQuery({ ...query, filter: filter.trim(), offset: 0 }); }}>
        <input id="filter" placeholder="address or prefix" value=${filter} onInput=${(e) => setFilter(e.target.value)} />
        <button type="submit">filter</button>
      </form>
      <button id="prev" disabled=${query.offset === 0} onClick=${() => setQuery({ ...query, offset: Math.max(0, query.offset - PAGE) })}>‹ prev</button>
      <button id="next" disabled=${!c || query.offset + PAGE >= c.matched} onClick=${() => setQuery({ ...query, offset: query.offset + PAGE })}>next ›</button>
      <span class="muted" id="conv-count">${c ? `${c.matched ? query.offset + 1 : 0}-${query.offset + c.rows.length} of ${c.matched}${c.filter ? ` in ${c.filter}` : ''} (${c.total} in the map)` : '…'}</span>
      ${view?.serverMs !== undefined && html`<span class="muted">server ${view.serverMs.toFixed(1)} ms</span>`}
    </div>
    <table><thead><tr><th>A</th><th>B</th><th class="n">packets</th><th class="n">bytes</th><th class="n">A→B bytes</th><th class="n">B→A bytes</th><th class="n">retrans</th><th class="n">idle</th></tr></thead>
    <tbody>${(c?.rows ?? []).map((r) => html`<tr key=${r.a + ' ' + r.b} data-conv=${r.a + ' ' + r.b} class=${'click' + (selected && selected.a === r.a && selected.b === r.b ? ' sel' : '')} onClick=${() => select({ a: r.a, b: r.b })}>
      <td>${r.a}</td><td>${r.b}</td><td class="n packets" data-value=${r.packets}>${human(r.packets)}</td><td class="n bytes" data-value=${r.bytes}>${human(r.bytes)}</td>
      <td class="n">${human(r.aToB.bytes)}</td><td class="n">${human(r.bToA.bytes)}</td><td class="n">${human(r.retransmits)}</td><td class="n">${age(nowNs - num(r.lastSeenNs))}</td></tr>`)}</tbody></table>
  </section>`;
}

function Profile({ selected, profile, hist, close }) {
  if (!selected) return null;
  const p = profile;
  const sizeData = useMemo(() => [SIZE_BUCKETS.map((_, i) => i), (p?.aToB.sizeHist ?? []).map(num), (p?.bToA.sizeHist ?? []).map(num)], [p]);
  const iatData = useMemo(() => [IAT_BUCKETS.map((_, i) => i), (p?.aToB.iatHist ?? []).map(num), (p?.bToA.iatHist ?? []).map(num)], [p]);
  return html`<section id="profile" class="wide">
    <h2>Conversation ${selected.a} ⇄ ${selected.b} <button onClick=${close}>close</button></h2>
    ${p === null && html`<p class="muted">not in the map (any more)</p>`}
    ${p && html`<div class="facts">
      ${[['A→B', p.aToB], ['B→A', p.bToA]].map(([name, d]) => html`
        <b>${name}</b><span>${human(d.packets)} packets, ${human(d.bytes)} bytes</span>
        <span>size ${Math.round(d.sizeMean)} ± ${Math.round(d.sizeStddev)} (${d.sizeMin}-${d.sizeMax})</span>
        <span>gap ${(d.iatMeanNs / 1e6).toFixed(2)} ms; retrans ${d.retransmits}, out of order ${d.outOfOrder}, zero window ${d.zeroWindow}; SYN ${d.tcpFlags.syn ?? 0}, RST ${d.tcpFlags.rst ?? 0}, FIN ${d.tcpFlags.fin ?? 0}; TTL ${d.ttlMin}-${d.ttlMax}</span>`)}
    </div>
    <div style="display:flex;gap:12px;flex-wrap:wrap">
      <${Chart} title="frame sizes (packets per bucket)" labels=${['A→B', 'B→A']} data=${sizeData} bars xLabels=${SIZE_BUCKETS} />
      <${Chart} title="bytes/s" labels=${['A→B', 'B→A']} data=${[hist.xs, ...(hist.ys.length ? hist.ys.slice(0, 2) : [[], []])]} />
      <div id="iat-hist" data-values=${JSON.stringify(iatData.slice(1))}><${Chart} title="inter-arrival gaps (gaps per bucket)" labels=${['A→B', 'B→A']} data=${iatData} bars xLabels=${IAT_BUCKETS} /></div>
      <${Chart} title="mean inter-arrival gap (ms)" labels=${['A→B', 'B→A']} data=${[hist.gapXs, hist.gapA, hist.gapB]} />
    </div>`}
  </section>`;
}

function Policies({ view, hist }) {
  const ps = view?.policies ?? [];
  return html`<section id="policies">
    <h2>Policies</h2>
    ${ps.length === 0 ? html`<p class="muted">no policy applied</p>` : html`<table><thead><tr><th>name</th><th class="n">matched</th><th class="n">applied</th><th class="n">fired</th><th class="n">blocks</th><th class="n">windows</th></tr></thead>
      <tbody>${ps.map((p) => html`<tr key=${p.name} data-policy=${p.name}><td title=${p.source}>${p.name}</td><td class="n">${human(p.counters.matched)}</td><td class="n">${human(p.counters.applied)}</td><td class="n fired">${human(p.counters.fired)}</td><td class="n">${human(p.counters.blocks)}</td><td class="n">${p.activeWindows}/${p.windows}</td></tr>`)}</tbody></table>
      <${Chart} title="matched/s" labels=${ps.map((p) => p.name)} data=${[hist.xs, ...ps.map((_, i) => hist.ys[i] ?? [])]} />`}
  </section>`;
}

function Blocks({ blocks, admin, csrf }) {
  const [error, setError] = useState('');
  const unblock = async (address) => {
    setError('');
    const res = await fetch('/api/unblock', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf ?? '' }, body: JSON.stringify({ address }) });
    if (!res.ok) setError((await res.json().catch(() => ({}))).error ?? `unblock failed (${res.status})`);
  };
  return html`<section id="blocks">
    <h2>Blocks</h2>
    ${error && html`<p class="error">${error}</p>`}
    ${blocks.length === 0 ? html`<p class="muted" id="no-blocks">nothing blocked</p>` : html`<table><thead><tr><th>address</th><th class="n">expires in</th>${admin && html`<th></th>`}</tr></thead>
      <tbody>${blocks.map((b) => html`<tr key=${b.address} data-address=${b.address}><td>${b.address}</td><td class="n">${age(b.remainingNs)}</td>
        ${admin && html`<td><button class="unblock" onClick=${() => unblock(b.address)}>unblock</button></td>`}</tr>`)}</tbody></table>`}
  </section>`;
}

function Events({ events }) {
  const [kind, setKind] = useState('');
  const kinds = [...new Set(events.map((e) => e.kind).filter(Boolean))];
  const shown = kind ? events.filter((e) => e.kind === kind) : events;
  return html`<section id="events">
    <h2>Events</h2>
    <div class="controls"><select value=${kind} onChange=${(e) => setKind(e.target.value)}><option value="">all kinds</option>${kinds.map((k) => html`<option value=${k}>${k}</option>`)}</select>
      <span class="muted">${events.length} received</span></div>
    <div class="events">${shown.map((e, i) => html`<div key=${i} class=${'kind-' + (e.kind ?? 'other')}>${(e.time ?? e.applied ?? '').slice(11, 23)} ${e.kind ?? e.subject} ${e.policy ?? ''} ${e.src ?? e.command?.ip ?? ''}${e.dst ? ' → ' + e.dst : ''}${e.kind === 'fire' ? ` (${e.value})` : ''}${e.reason ? html` <span class="reason">${e.reason}${e.frames !== undefined ? ` ×${e.frames}` : ''}${e.by ? ` (${e.by})` : ''}</span>` : ''}</div>`)}</div>
  </section>`;
}

function Datapath({ view, hist, lineHist }) {
  const d = view?.datapath;
  const agent = view?.agent;
  const verdicts = d ? Object.keys(d.verdicts) : [];
  return html`<section id="datapath">
    <h2>Datapath</h2>
    ${d ? html`<div class="facts">${verdicts.map((v) => html`<b>${v}</b><span data-verdict=${v}>${human(d.verdicts[v])}</span>`)}</div>
      <${Chart} title="packets/s by verdict" labels=${verdicts} data=${[hist.xs, ...verdicts.map((_, i) => hist.ys[i] ?? [])]} />` : html`<p class="muted">no counters</p>`}
    ${agent && agent.mode === 'inline' && html`<h2>Delay line</h2>
      <div class="facts"><b>held</b><span>${agent.line.inFlight} of ${agent.maxInFlight}</span><b>sent</b><span>${human(agent.line.transmitted)}</span><b>overflow</b><span>${human(agent.line.overflow)}</span><b>late drops</b><span>${human(agent.line.lateDropped)}</span></div>
      <${Chart} title="delay line frames/s" labels=${['received', 'transmitted']} data=${[lineHist.xs, lineHist.ys[0] ?? [], lineHist.ys[1] ?? []]} />`}
  </section>`;
}

function App() {
  const [session, setSession] = useState(null);
  const [view, setView] = useState(null);
  const [blocks, setBlocks] = useState([]);
  const [events, setEvents] = useState([]);
  const [live, setLive] = useState(false);
  const [query, setQuery] = useState({ sort: 'bytes', filter: '', offset: 0 });
  const [selected, setSelected] = useState(null);
  const hists = useRef({ verdicts: newHist(), policies: newHist(), line: newHist(), conv: { ...newHist(), gapXs: [], gapA: [], gapB: [] } });
  const [, tick] = useState(0);

  useEffect(() => { fetch('/api/session').then((r) => r.json()).then(setSession, () => setSession({ admin: false })); }, []);
  useEffect(() => { hists.current.conv = { ...newHist(), gapXs: [], gapA: [], gapB: [] }; }, [selected?.a, selected?.b]);
  useEffect(() => {
    const p = new URLSearchParams({ sort: query.sort, offset: String(query.offset), limit: String(PAGE) });
    if (query.filter) p.set('filter', query.filter);
    if (selected) { p.set('a', selected.a); p.set('b', selected.b); }
    const es = new EventSource('/api/stream?' + p);
    es.onopen = () => setLive(true);
    es.onerror = () => setLive(false);
    es.addEventListener('view', (m) => {
      const v = JSON.parse(m.data);
      const t = Date.now() / 1000;
      const H = hists.current;
      if (v.datapath) pushRates(H.verdicts, t, Object.fromEntries(Object.entries(v.datapath.verdicts).map(([k, n]) => [k, num(n)])));
      pushRates(H.policies, t, Object.fromEntries(v.policies.map((p) => [p.name, num(p.counters.matched)])));
      if (v.agent?.line) pushRates(H.line, t, { received: num(v.agent.line.received), transmitted: num(v.agent.line.transmitted) });
      if (v.profile) {
        pushRates(H.conv, t, { a: num(v.profile.aToB.bytes), b: num(v.profile.bToA.bytes) });
        H.conv.gapXs.push(t); H.conv.gapA.push(v.profile.aToB.iatMeanNs / 1e6); H.conv.gapB.push(v.profile.bToA.iatMeanNs / 1e6);
        if (H.conv.gapXs.length > HISTORY) { H.conv.gapXs.shift(); H.conv.gapA.shift(); H.conv.gapB.shift(); }
      }
      setView(v);
      setBlocks(v.blocks);
      tick((n) => n + 1);
    });
    es.addEventListener('blocks', (m) => setBlocks(JSON.parse(m.data).blocks));
    es.addEventListener('event', (m) => setEvents((list) => [JSON.parse(m.data), ...list].slice(0, 200)));
    es.addEventListener('failure', (m) => setView((v) => ({ ...v, failure: JSON.parse(m.data).error })));
    return () => es.close();
  }, [query.sort, query.filter, query.offset, selected?.a, selected?.b]);

  const H = hists.current;
  return html`<header><h1>bae live</h1><span>${view?.node ?? session?.node ?? ''}</span>
      <span class=${'state ' + (live ? 'live' : 'down')} id="state">${live ? 'live' : 'disconnected'}</span>
      <span class="muted">${session?.admin ? 'admin' : 'read-only'}</span><span class="muted">${view?.time?.slice(11, 19) ?? ''}</span>
      ${view?.failure && html`<span class="error">${view.failure}</span>`}</header>
    <main>
      <${Conversations} view=${view} query=${query} setQuery=${setQuery} selected=${selected} select=${setSelected} />
      <${Profile} selected=${selected} profile=${view?.profile} hist=${{ ...H.conv }} close=${() => setSelected(null)} />
      <${Blocks} blocks=${blocks} admin=${session?.admin} csrf=${session?.csrf} />
      <${Events} events=${events} />
      <${Nodes} fleet=${view?.fleet} self=${view?.node} />
      <${Policies} view=${view} hist=${{ ...H.policies }} />
      <${Datapath} view=${view} hist=${{ ...H.verdicts }} lineHist=${{ ...H.line }} />
    </main>`;
}

render(html`<${App} />`, document.getElementById('app'));
