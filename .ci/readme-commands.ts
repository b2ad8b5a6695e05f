// The commands of a README's fenced blocks, as .ci/readme-check.ts runs them: a shell command may continue over lines
// (a trailing backslash, or a quote still open), and its key, without comments and runs of spaces, names it in the
// check's table of skipped commands.

export interface Command {
  text: string; // as printed
  key: string; // without comments and runs of spaces: SKIPPED's key
}

export function fencedBlocks(markdown: string): { lang: string; code: string }[] {
  return [...markdown.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2] }));
}

/** A block's commands: a line continued by a backslash or an open quote belongs to its command; comments apart. */
export function shellCommands(code: string): Command[] {
  const commands: Command[] = [];
  let text = '';
  let key = '';
  let quote = '';
  for (const line of code.split('\n')) {
    let continued = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (!quote && c === '#' && (i === 0 || /\s/.test(line[i - 1]))) break;
      if (!quote && c === '\\' && i === line.length - 1) {
        continued = true;
        break;
      }
      key += c;
      if (quote) {
        if (c === quote) quote = '';
        else if (c === '\\' && quote === '"') key += line[++i];
      } else if (c === "'" || c === '"') {
        quote = c;
      } else if (c === '\\') {
        key += line[++i];
      }
    }
    text += (text ? '\n' : '') + line;
    key += ' ';
    if (quote || continued) continue;
    const normalized = key.replace(/\s+/g, ' ').trim();
    if (normalized) commands.push({ text: text.trim(), key: normalized });
    text = '';
    key = '';
  }
  if (key.trim()) throw new Error(`README: a command in a sh block does not end: ${text}`);
  return commands;
}
