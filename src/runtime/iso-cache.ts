/**
 * ISO 8601 text of the times in the status document, formatted once per
 * value instead of once per status request: a worker's startedAt and readyAt
 * never change, and at 1 024 workers formatting ~2 000 dates on every status
 * cost milliseconds. Bounded: when it holds more than `max` values it starts
 * over (the live workers' times are formatted again on the next status).
 */
export class IsoCache {
  private readonly texts = new Map<number, string>();

  constructor(private readonly max = 8192) {}

  format(t: number): string {
    let text = this.texts.get(t);
    if (text === undefined) {
      if (this.texts.size >= this.max) this.texts.clear();
      text = new Date(t).toISOString();
      this.texts.set(t, text);
    }
    return text;
  }

  get size(): number {
    return this.texts.size;
  }
}
