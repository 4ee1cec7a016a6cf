// The fleet's nodes (docs/web.md "Nodes"): every agent whose heartbeat the agent's bus carries,
// pushed with each view. On the in-process bus (no --nats) the page says the node is standalone.
import { h } from 'preact';
import htm from 'htm';

const html = htm.bind(h);

function seconds(ms) {
  const s = Math.max(0, ms) / 1000;
  return s < 10 ? s.toFixed(1) + 's' : s < 120 ? Math.round(s) + 's' : Math.round(s / 60) + 'm';
}

const status = (n) => (n.live ? 'live' : n.state === 'stopped' ? 'stopped' : 'silent');

export function Nodes({ fleet, self }) {
  if (!fleet) return null;
  const nodes = fleet.nodes ?? [];
  return html`<section id="nodes" class=${fleet.standalone ? 'standalone' : 'fleet'}>
    <h2>Nodes</h2>
    ${fleet.standalone
      ? html`<p class="muted" id="standalone">this node${self ? ` (${self})` : ''} is standalone: embedded bus, no fleet (start the agents with --nats URL to see the others)</p>`
      : html`<p class="muted">NATS ${fleet.url ?? ''}: ${nodes.filter((n) => n.live).length} live of ${nodes.length}</p>`}
    ${nodes.length > 0 && html`<table><thead><tr><th>node</th><th>status</th><th>mode</th><th>ports</th><th class="n">last heartbeat</th><th class="n">generation</th><th class="n">blocks</th></tr></thead>
      <tbody>${nodes.map((n) => html`<tr key=${n.node} data-node=${n.node} class=${'node-' + status(n) + (n.node === self ? ' sel' : '')}>
        <td title=${`${n.host} pid ${n.pid}`}>${n.node}</td><td class="status">${status(n)}</td><td>${n.mode}</td><td>${(n.ifaces ?? []).join(', ')}</td>
        <td class="n age" data-ms=${n.ageMs}>${seconds(n.ageMs)} ago</td><td class="n">${n.generation ?? '-'}</td><td class="n blocks">${n.blocks ?? '-'}</td></tr>`)}</tbody></table>`}
  </section>`;
}
