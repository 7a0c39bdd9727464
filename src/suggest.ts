/**
 * "Did you mean …?" for typos in config keys and smoothctl commands. No
 * imports: smoothctl loads it only for a command it does not know.
 */

/** The candidate closest to `key` (a prefix either way, or a small edit distance), or null. */
export function closestKey(key: string, candidates: readonly string[]): string | null {
  const lower = key.toLowerCase();
  // Abbreviations and suffixed forms: "unavail" -> unavailable, "readyTimeoutMs" -> readyTimeout.
  const prefixed = candidates.find((c) => {
    const candidate = c.toLowerCase();
    return lower.length >= 3 && (candidate.startsWith(lower) || lower.startsWith(candidate));
  });
  if (prefixed) return prefixed;
  let best: string | null = null;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(lower, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  const tolerance = Math.max(2, Math.floor(key.length / 3));
  return bestDistance <= tolerance ? best : null;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] as number;
}
