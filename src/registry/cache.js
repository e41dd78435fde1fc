/** A least-recently-used cache of immutable byte strings, bounded by total size. */
export class ByteLimitedCache {
    maxBytes;
    entries = new Map();
    bytes = 0;
    constructor(maxBytes) {
        this.maxBytes = maxBytes;
    }
    get(key) {
        const value = this.entries.get(key);
        if (value) {
            // Re-insert to mark as most recently used.
            this.entries.delete(key);
            this.entries.set(key, value);
        }
        return value;
    }
    set(key, value) {
        if (value.byteLength > this.maxBytes / 4)
            return;
        const old = this.entries.get(key);
        if (old) {
            this.bytes -= old.byteLength;
            this.entries.delete(key);
        }
        this.entries.set(key, value);
        this.bytes += value.byteLength;
        for (const [k, v] of this.entries) {
            if (this.bytes <= this.maxBytes)
                break;
            this.entries.delete(k);
            this.bytes -= v.byteLength;
        }
    }
    delete(key) {
        const old = this.entries.get(key);
        if (old) {
            this.bytes -= old.byteLength;
            this.entries.delete(key);
        }
    }
}
