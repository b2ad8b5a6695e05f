// Device code in a CUDA shared library, kept for one architecture only. ONNX Runtime's CUDA provider carries machine
// code (SASS) for six GPU generations in its `.nv_fatbin` section (166 of its 230 MB); a GPU runs only the code of its
// own major architecture (sm_90 on Hopper: SASS is not portable across majors), so the entries of the others are dead
// weight on the way there. They are zeroed in place, headers kept and every offset unchanged, and the file then
// compresses to a fifth. A container without an entry for the kept architecture is left whole.
//
// Fatbin layout (as CUDA's fatbinary tool writes it): containers of [magic 0xBA55ED50 u32, version u16, header size u16,
// payload size u64], each holding entries [kind u16 (1 PTX, 2 ELF), u16, header size u32, payload size u64, ...,
// arch u32 at byte 28, ...] followed by their payloads.

export interface ElfSection {
  name: string;
  offset: number;
  size: number;
}

export interface FatbinEntry {
  container: number;
  kind: 'ptx' | 'elf' | 'other';
  arch: number;
  payloadOffset: number;
  payloadSize: number;
}

const FATBIN_MAGIC = 0xba55ed50;

/** Section headers of a little-endian ELF64 file. */
export function elfSections(buf: Uint8Array): ElfSection[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 64 || view.getUint32(0, false) !== 0x7f454c46) throw new Error('not an ELF file');
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error('not a little-endian 64-bit ELF file');
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  if (shoff + shnum * shentsize > buf.length) throw new Error('ELF section headers lie outside the file');
  const raw = Array.from({ length: shnum }, (_, i) => {
    const at = shoff + i * shentsize;
    return { nameAt: view.getUint32(at, true), offset: Number(view.getBigUint64(at + 24, true)), size: Number(view.getBigUint64(at + 32, true)) };
  });
  const strtab = raw[shstrndx];
  const nameOf = (at: number) => {
    let end = strtab.offset + at;
    while (end < buf.length && buf[end] !== 0) end++;
    return new TextDecoder().decode(buf.subarray(strtab.offset + at, end));
  };
  return raw.map((s) => ({ name: nameOf(s.nameAt), offset: s.offset, size: s.size }));
}

export function fatbinEntries(buf: Uint8Array, section: ElfSection): FatbinEntry[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const end = section.offset + section.size;
  if (end > buf.length) throw new Error(`${section.name} lies outside the file`);
  const entries: FatbinEntry[] = [];
  let pos = section.offset;
  let container = 0;
  while (pos + 16 <= end) {
    if (view.getUint32(pos, true) !== FATBIN_MAGIC) {
      pos += 8; // containers are 8-byte aligned, with padding between them
      continue;
    }
    const headerSize = view.getUint16(pos + 6, true);
    const containerEnd = pos + headerSize + Number(view.getBigUint64(pos + 8, true));
    if (containerEnd > end) throw new Error(`fatbin container at ${pos} runs past ${section.name}`);
    for (let e = pos + headerSize; e < containerEnd;) {
      const kind = view.getUint16(e, true);
      const entryHeader = view.getUint32(e + 4, true);
      const payloadSize = Number(view.getBigUint64(e + 8, true));
      const payloadOffset = e + entryHeader;
      if (entryHeader < 32 || payloadOffset + payloadSize > containerEnd) throw new Error(`malformed fatbin entry at ${e}`);
      entries.push({ container, kind: kind === 1 ? 'ptx' : kind === 2 ? 'elf' : 'other', arch: view.getUint32(e + 28, true), payloadOffset, payloadSize });
      e = payloadOffset + payloadSize;
    }
    container++;
    pos = containerEnd;
  }
  return entries;
}

export interface TrimReport {
  zeroedBytes: number;
  containers: number;
  /** Containers left whole because they hold no code for the kept architecture. */
  containersWithoutArch: number;
  /** Bytes of payload per "elf_<arch>" / "ptx_<arch>" before trimming. */
  bytesByArch: Record<string, number>;
}

/** Zeroes, in place, the machine code of every architecture but `arch` in the `.nv_fatbin` section of `buf`. */
export function keepOnlyArch(buf: Uint8Array, arch: number): TrimReport {
  const section = elfSections(buf).find((s) => s.name === '.nv_fatbin');
  if (!section) throw new Error('no .nv_fatbin section: not a CUDA library with device code');
  const entries = fatbinEntries(buf, section);
  const byContainer = new Map<number, FatbinEntry[]>();
  const bytesByArch: Record<string, number> = {};
  for (const e of entries) {
    byContainer.set(e.container, [...(byContainer.get(e.container) ?? []), e]);
    bytesByArch[`${e.kind}_${e.arch}`] = (bytesByArch[`${e.kind}_${e.arch}`] ?? 0) + e.payloadSize;
  }
  let zeroedBytes = 0;
  let containersWithoutArch = 0;
  for (const list of byContainer.values()) {
    if (!list.some((e) => e.kind === 'elf' && e.arch === arch)) {
      containersWithoutArch++;
      continue;
    }
    for (const e of list) {
      if (e.kind !== 'elf' || e.arch === arch) continue; // PTX stays: the driver could compile it for this GPU
      buf.fill(0, e.payloadOffset, e.payloadOffset + e.payloadSize);
      zeroedBytes += e.payloadSize;
    }
  }
  return { zeroedBytes, containers: byContainer.size, containersWithoutArch, bytesByArch };
}
