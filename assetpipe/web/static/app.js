// assetpipe's own script: times shown in the reader's zone, and the live part of a page kept fresh.
"use strict";

function localTimes(root) {
  for (const el of root.querySelectorAll("time[datetime]")) {
    const at = new Date(el.getAttribute("datetime"));
    if (!isNaN(at)) {
      el.textContent = at.toLocaleString(undefined, {
        year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit",
      });
    }
  }
}

// The live part ([data-live]) is fetched again from the same URL, rendered by the server with the same
// template (so escaped the same way), every few seconds while the page is visible. Open <details> stay open.
const POLL_MS = 3000;

async function refresh(live) {
  const response = await fetch(window.location.href, {
    headers: { "X-Assetpipe-Live": "1" }, credentials: "same-origin", cache: "no-store",
  });
  if (!response.ok || response.redirected) return;
  const html = await response.text();
  const open = [...live.querySelectorAll("details")].map((d) => d.open);
  live.innerHTML = html;
  live.querySelectorAll("details").forEach((d, i) => { if (open[i]) d.open = true; });
  localTimes(live);
}

function poll(live) {
  let busy = false;
  window.setInterval(async () => {
    if (busy || document.hidden || live.hasAttribute("data-paused")) return;
    busy = true;
    try { await refresh(live); } catch (err) { /* offline for a moment: try again at the next beat */ }
    finally { busy = false; }
  }, POLL_MS);
}

document.addEventListener("DOMContentLoaded", () => {
  localTimes(document);
  for (const live of document.querySelectorAll("[data-live]")) poll(live);
});
