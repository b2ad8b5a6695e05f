// External programs some tests use (installed by .ci/run with apt-get); tests skip with a printed reason without them.
import { spawnSync } from 'node:child_process';

export function which(program: string, suite: string, debianPackage = 'prometheus'): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${program}`], { encoding: 'utf8' });
  const path = r.status === 0 ? r.stdout.trim() : null;
  if (!path) console.warn(`[skip] ${suite}: \`${program}\` is not installed (.ci/run installs Debian's ${debianPackage} package)`);
  return path;
}
