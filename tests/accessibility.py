"""What a screen reader would hear, and axe-core's verdict, read out of a real Chromium page."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# WCAG 2.2 A/AA and axe's best practices (one main, unique landmarks, roles an element may take, ...).
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa", "best-practice"]

# Every text a live region gains, as one announcement: each MutationRecord that adds text inside an
# element with aria-live (other than "off") or an implicitly live role. Installed before any page script.
RECORD_ANNOUNCEMENTS = """
window.__announced = [];
const LIVE = '[aria-live]:not([aria-live="off"]), [role="status"], [role="alert"], [role="log"], [role="marquee"], [role="timer"]';
new MutationObserver((records) => {
  for (const record of records) {
    const node = record.target.nodeType === Node.ELEMENT_NODE ? record.target : record.target.parentElement;
    const region = node?.closest(LIVE);
    if (!region) continue;
    const text = record.type === "characterData" ? record.target.data
      : [...record.addedNodes].map((added) => added.textContent).join("");
    if (text.trim()) window.__announced.push({ region: region.id || region.className, text });
  }
}).observe(document, { childList: true, subtree: true, characterData: true });
"""


async def announcements(page):
    """What the page's live regions were given so far, in order: [{region, text}]."""
    return await page.evaluate("window.__announced")


async def axe_violations(page, label):
    """axe-core's violations of AXE_TAGS on the page as it stands, one line each, labelled."""
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.evaluate(AXE.read_text())  # over the DevTools protocol: the page's policy allows no inline script
    found = await page.evaluate(
        "async (tags) => (await axe.run(document, { runOnly: { type: 'tag', values: tags } })).violations"
        ".map((v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(' ')).slice(0, 4).join(', ')})`)",
        AXE_TAGS,
    )
    return [f"{label}: {line}" for line in found]
