import { utf8Text } from "./wire-reader.js";

// Each entry is five numbers in `spans`: key start, key stop, value start, value stop, and 1 when a repeat folds.
const STRIDE = 5;

/**
 * Request headers left in the CheckRequest bytes and decoded on demand. A Check reads one or two headers of the
 * ten or more Envoy sends, so `get` compares names byte-wise and decodes only the value it returns; iterating (the
 * rare approval path) decodes every entry once. Semantics equal a Map filled in wire order with lower-cased names,
 * where a `headers` map entry replaces an earlier value and a `header_map` entry is comma-folded onto it.
 */
export class WireHeaders implements ReadonlyMap<string, string> {
  private decoded: Map<string, string> | undefined;

  constructor(
    private readonly buf: Buffer,
    private readonly spans: ArrayLike<number>,
  ) {}

  get(name: string): string | undefined {
    if (this.decoded) return this.decoded.get(name);
    const { spans } = this;
    let found: string | undefined;
    for (let i = 0; i < spans.length; i += STRIDE) {
      if (!this.nameIs(spans[i]!, spans[i + 1]!, name)) continue;
      const value = this.text(spans[i + 2]!, spans[i + 3]!);
      found = spans[i + 4] === 1 && found !== undefined ? `${found},${value}` : value;
    }
    return found;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  get size(): number {
    return this.all().size;
  }

  forEach(
    callback: (value: string, key: string, map: ReadonlyMap<string, string>) => void,
    thisArg?: unknown,
  ): void {
    for (const [key, value] of this.all()) callback.call(thisArg, value, key, this);
  }

  entries(): MapIterator<[string, string]> {
    return this.all().entries();
  }

  keys(): MapIterator<string> {
    return this.all().keys();
  }

  values(): MapIterator<string> {
    return this.all().values();
  }

  [Symbol.iterator](): MapIterator<[string, string]> {
    return this.all().entries();
  }

  /** Every header decoded into a Map, once. */
  private all(): Map<string, string> {
    if (this.decoded) return this.decoded;
    const map = new Map<string, string>();
    const { spans } = this;
    for (let i = 0; i < spans.length; i += STRIDE) {
      const key = this.text(spans[i]!, spans[i + 1]!).toLowerCase();
      const value = this.text(spans[i + 2]!, spans[i + 3]!);
      const previous = spans[i + 4] === 1 ? map.get(key) : undefined;
      map.set(key, previous === undefined ? value : `${previous},${value}`);
    }
    this.decoded = map;
    return map;
  }

  /** Whether bytes [start, stop), lower-cased, spell `name`; without decoding when they are ASCII. */
  private nameIs(start: number, stop: number, name: string): boolean {
    const { buf } = this;
    if (stop - start !== name.length) return this.nonAscii(start, stop) && this.slowNameIs(start, stop, name);
    for (let i = 0; i < name.length; i++) {
      let b = buf[start + i]!;
      if (b >= 0x80) return this.slowNameIs(start, stop, name);
      if (b >= 0x41 && b <= 0x5a) b |= 0x20;
      if (b !== name.charCodeAt(i)) return false;
    }
    return true;
  }

  private nonAscii(start: number, stop: number): boolean {
    for (let i = start; i < stop; i++) if (this.buf[i]! >= 0x80) return true;
    return false;
  }

  // Unicode lower-casing can map non-ASCII to ASCII (the Kelvin sign to "k"), so such names are compared decoded.
  private slowNameIs(start: number, stop: number, name: string): boolean {
    return this.text(start, stop).toLowerCase() === name;
  }

  private text(start: number, stop: number): string {
    return utf8Text(this.buf, start, stop);
  }
}
