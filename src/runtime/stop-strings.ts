// Stop sequences over streamed text, including ones that span token boundaries: text that could still be the start
// of a stop string is held back until it is decided.

export interface StopResult {
  /** Text safe to emit now. */
  text: string;
  /** True when a stop string matched; `text` ends right before it. */
  stopped: boolean;
}

export class StopStrings {
  private held = '';
  private readonly maxLen: number;

  constructor(private readonly stops: string[]) {
    this.maxLen = Math.max(0, ...stops.map((s) => s.length));
  }

  push(chunk: string): StopResult {
    if (this.stops.length === 0) return { text: chunk, stopped: false };
    this.held += chunk;
    let first = -1;
    for (const s of this.stops) {
      const at = this.held.indexOf(s);
      if (at >= 0 && (first < 0 || at < first)) first = at;
    }
    if (first >= 0) {
      const text = this.held.slice(0, first);
      this.held = '';
      return { text, stopped: true };
    }
    // Hold the longest suffix that is a proper prefix of some stop string.
    let keep = 0;
    for (let n = Math.min(this.maxLen - 1, this.held.length); n > 0; n--) {
      const tail = this.held.slice(this.held.length - n);
      if (this.stops.some((s) => s.startsWith(tail))) {
        keep = n;
        break;
      }
    }
    const text = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { text, stopped: false };
  }

  /** Text still held at the end of generation. */
  flush(): string {
    const text = this.held;
    this.held = '';
    return text;
  }
}
