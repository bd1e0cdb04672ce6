// Headless-browser check of the spb HTML report.
//
//   node check_report.mjs REPORT_DIR [--screenshot PNG]
//
// Opens REPORT_DIR/index.html from file:// in Debian's Chromium (CHROMIUM overrides
// /usr/bin/chromium) and compares it with REPORT_DIR/report-expect.json (written next to the
// report by `cargo run -p spb-lab --example sample_report`):
//   - no console errors, no page errors, no request other than file://;
//   - every svg.plot has a non-zero size and holds drawn data (polyline/circle with a non-empty
//     bounding box), and there are `plots` of them;
//   - there are `map_rows` svg.spb-row strips (each visible one with a non-zero size, each with a
//     background rect), `map_panels` panel headers and `summary_tables` summary tables.
// Prints one line per check and closes with "N passed, M failed"; exits 1 on any failure.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const args = process.argv.slice(2);
const dir = args[0];
if (!dir) {
  console.error('usage: node check_report.mjs REPORT_DIR [--screenshot PNG]');
  process.exit(2);
}
const shotIdx = args.indexOf('--screenshot');
const screenshot = shotIdx >= 0 ? args[shotIdx + 1] : null;
const expect = JSON.parse(fs.readFileSync(path.join(dir, 'report-expect.json'), 'utf8'));
const url = pathToFileURL(path.resolve(dir, 'index.html')).href;

let passed = 0;
let failed = 0;
function check(name, ok, detail = '') {
  if (ok) passed++;
  else failed++;
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${name}${detail ? ` (${detail})` : ''}`);
}

const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'spb-report-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  headless: true,
  viewport: { width: 1500, height: 1000 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
try {
  const page = context.pages()[0] ?? (await context.newPage());
  const errors = [];
  const foreign = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith('file:')) return route.continue();
    foreign.push(u);
    return route.abort();
  });
  const resp = await page.goto(url, { waitUntil: 'load' });
  check('page loads', resp === null || resp.ok(), url);

  const m = await page.evaluate(() => {
    const box = (e) => {
      const r = e.getBoundingClientRect();
      return { w: r.width, h: r.height };
    };
    const plots = [...document.querySelectorAll('svg.plot')].map((svg) => {
      const data = [...svg.querySelectorAll('polyline, path, circle')].filter((e) => {
        const b = e.getBBox();
        return b.width > 0 || b.height > 0;
      });
      return { ...box(svg), data: data.length, label: svg.getAttribute('aria-label') };
    });
    const rows = [...document.querySelectorAll('svg.spb-row')].map((svg) => ({
      ...box(svg),
      visible: svg.checkVisibility ? svg.checkVisibility() : svg.getClientRects().length > 0,
      rect: svg.querySelector('rect') !== null,
      title: svg.querySelector('title')?.textContent ?? '',
    }));
    return {
      title: document.title,
      plots,
      rows,
      panels: document.querySelectorAll('.map-panel').length,
      summaries: document.querySelectorAll('table.summary').length,
      external: document.querySelectorAll('script[src], link[href], img, iframe, object, embed').length,
      bodyWidth: document.documentElement.scrollWidth,
      viewWidth: window.innerWidth,
    };
  });

  check('document has a title', m.title.length > 0, m.title);
  check('no console or page errors', errors.length === 0, errors.slice(0, 3).join(' | '));
  check('no request other than file://', foreign.length === 0, foreign.slice(0, 3).join(' '));
  check('no external resource elements', m.external === 0, `${m.external}`);
  check('plot count', m.plots.length === expect.plots, `${m.plots.length} of ${expect.plots}`);
  const badSize = m.plots.filter((p) => !(p.w > 0 && p.h > 0));
  check('every plot has a non-zero size', badSize.length === 0, badSize.map((p) => p.label).join(', '));
  const empty = m.plots.filter((p) => p.data === 0);
  check('every plot has drawn data', empty.length === 0, empty.map((p) => p.label).join(', '));
  check('summary table count', m.summaries === expect.summary_tables, `${m.summaries} of ${expect.summary_tables}`);
  check('map row count', m.rows.length === expect.map_rows, `${m.rows.length} of ${expect.map_rows}`);
  check('map panel count', m.panels === expect.map_panels, `${m.panels} of ${expect.map_panels}`);
  const visible = m.rows.filter((r) => r.visible);
  const flat = visible.filter((r) => !(r.w > 0 && r.h > 0));
  check('visible map rows have a non-zero size', visible.length > 0 && flat.length === 0,
    `${visible.length} visible, ${flat.length} flat`);
  check('every map row has a background and a title', m.rows.every((r) => r.rect && r.title.length > 0));
  check('page does not scroll sideways', m.bodyWidth <= m.viewWidth, `${m.bodyWidth} <= ${m.viewWidth}`);

  if (screenshot) {
    await page.screenshot({ path: screenshot, fullPage: true });
    console.log(`screenshot: ${screenshot}`);
  }
} finally {
  await context.close();
  fs.rmSync(profile, { recursive: true, force: true });
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
