import { describe, expect, it } from 'vitest';
import { StopStrings } from '../../../src/runtime/stop-strings.ts';

function run(stops: string[], chunks: string[]) {
  const s = new StopStrings(stops);
  let out = '';
  for (const c of chunks) {
    const r = s.push(c);
    out += r.text;
    if (r.stopped) return { out, stopped: true };
  }
  return { out: out + s.flush(), stopped: false };
}

describe('StopStrings', () => {
  it('matches a stop string split across chunks and cuts before it', () => {
    expect(run(['END'], ['abc E', 'N', 'D more'])).toEqual({ out: 'abc ', stopped: true });
  });
  it('releases held text that turned out not to be a stop string', () => {
    expect(run(['END'], ['abc E', 'X'])).toEqual({ out: 'abc EX', stopped: false });
    expect(run(['END'], ['abc EN'])).toEqual({ out: 'abc EN', stopped: false });
  });
  it('picks the earliest of several stop strings', () => {
    expect(run(['xyz', 'b'], ['axyzb'])).toEqual({ out: 'a', stopped: true });
  });
  it('passes everything through without stop strings', () => {
    expect(run([], ['a', 'b'])).toEqual({ out: 'ab', stopped: false });
  });
});
