// Device buffers pooled by size class, shared by the kernel backends' runtimes: a buffer handed to a tensor
// (adopt) returns to the pool when the tensor is garbage-collected; a plan's temporaries return when it ends.

export class BufferPool<B extends { bytes: number }> {
  private readonly free = new Map<number, B[]>();
  private readonly finalizer = new FinalizationRegistry<B>((b) => this.put(b));

  /** A pooled buffer of exactly this size class, if one is free. */
  take(bytes: number): B | undefined {
    return this.free.get(bytes)?.pop();
  }
  put(b: B): void {
    const list = this.free.get(b.bytes) ?? [];
    list.push(b);
    this.free.set(b.bytes, list);
  }
  /** Hands a buffer to a tensor: it returns to the pool when the tensor is collected (a Backend's adopt). */
  readonly adopt = (owner: object, b: unknown): void => this.finalizer.register(owner, b as B, owner);
  /** The tensor gave its buffer away (donation): it no longer returns it (a Backend's disown). */
  readonly disown = (owner: object): void => void this.finalizer.unregister(owner);
  /** Empties the pool, returning what it held. */
  drain(): B[] {
    const all = [...this.free.values()].flat();
    this.free.clear();
    return all;
  }
  get size(): number {
    let n = 0;
    for (const l of this.free.values()) n += l.length;
    return n;
  }
}
