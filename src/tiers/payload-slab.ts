// The memory tier's payload region: session texts as UTF-8 bytes in 128-byte blocks of 1 MiB pages allocated
// outside the V8 heap, each payload a chain of blocks. It keeps session text out of V8's old generation, where
// every spilled string would otherwise wait as garbage for a mark-compact (README, Performance: RSS).

/** Bytes per block: a payload takes ceil(bytes / BLOCK_BYTES) blocks (at least one). */
export const BLOCK_BYTES = 128
const BLOCK_SHIFT = 7
/** Blocks per page (a page is 1 MiB). */
const PAGE_BLOCKS = 8192
const PAGE_SHIFT = 13
const NO_BLOCK = -1

/** Blocks a payload of `bytes` UTF-8 bytes takes. */
export function blocksFor(bytes: number): number {
  return bytes <= BLOCK_BYTES ? 1 : Math.ceil(bytes / BLOCK_BYTES)
}

/**
 * A growable region of fixed-size blocks outside the V8 heap. `store` copies a payload in and returns its first
 * block; `read` decodes it; `free` gives its blocks back. Pages are added when no free block is left and kept
 * (the region stays at its peak, as V8's heap does); the memory tier's byte budget bounds that peak. Freed
 * blocks are reused most recently freed first, in ascending order, so a payload that replaces one of the same
 * size usually gets one contiguous run (one copy in, one decode out).
 */
export class PayloadSlab {
  #pages: Buffer[] = []
  /** Next block of each block's chain (NO_BLOCK at a chain's end). */
  #next = new Int32Array(0)
  /** Stack of free blocks; the top is the next one handed out. */
  #free = new Int32Array(0)
  #freeCount = 0
  /** Where chains that are not contiguous are assembled (grows to the largest payload seen). */
  #scratch = Buffer.allocUnsafeSlow(16 * 1024)

  /** Bytes of the pages allocated (the region's footprint outside the heap). */
  get capacityBytes(): number {
    return this.#pages.length * PAGE_BLOCKS * BLOCK_BYTES
  }

  /** Bytes of the blocks in use (payload bytes rounded up to whole blocks). */
  get usedBytes(): number {
    return (this.#pages.length * PAGE_BLOCKS - this.#freeCount) * BLOCK_BYTES
  }

  /** Copies `payload` (whose UTF-8 length is `bytes`) into the region; returns its first block. */
  store(payload: string, bytes: number): number {
    const count = blocksFor(bytes)
    while (this.#freeCount < count) this.#addPage()
    const free = this.#free
    const next = this.#next
    const head = free[--this.#freeCount] as number
    let last = head
    let contiguous = true
    for (let k = 1; k < count; k++) {
      const block = free[--this.#freeCount] as number
      if (block !== last + 1 || block >>> PAGE_SHIFT !== head >>> PAGE_SHIFT) contiguous = false
      next[last] = block
      last = block
    }
    next[last] = NO_BLOCK
    if (contiguous) {
      this.#page(head).write(payload, this.#offset(head), bytes, 'utf8')
      return head
    }
    const scratch = this.#scratchFor(bytes)
    scratch.write(payload, 0, bytes, 'utf8')
    let block = head
    for (let from = 0; from < bytes; from += BLOCK_BYTES) {
      const offset = this.#offset(block)
      scratch.copy(this.#page(block), offset, from, Math.min(bytes, from + BLOCK_BYTES))
      block = next[block] as number
    }
    return head
  }

  /** The payload of `bytes` UTF-8 bytes whose chain starts at `head`. */
  read(head: number, bytes: number): string {
    const next = this.#next
    const count = blocksFor(bytes)
    let block = head
    let contiguous = true
    for (let k = 1; k < count; k++) {
      const following = next[block] as number
      if (following !== block + 1 || following >>> PAGE_SHIFT !== head >>> PAGE_SHIFT) {
        contiguous = false
        break
      }
      block = following
    }
    const offset = this.#offset(head)
    if (contiguous) return this.#page(head).toString('utf8', offset, offset + bytes)
    const scratch = this.#scratchFor(bytes)
    block = head
    for (let from = 0; from < bytes; from += BLOCK_BYTES) {
      const at = this.#offset(block)
      this.#page(block).copy(scratch, from, at, at + Math.min(BLOCK_BYTES, bytes - from))
      block = next[block] as number
    }
    return scratch.toString('utf8', 0, bytes)
  }

  /** Gives back the blocks of the chain at `head` (a payload of `bytes` bytes). */
  free(head: number, bytes: number): void {
    const count = blocksFor(bytes)
    const free = this.#free
    const next = this.#next
    // NB: pushed last block first, so the next store pops them in ascending order again (one contiguous run).
    let block = head
    const top = this.#freeCount + count - 1
    for (let k = 0; k < count; k++) {
      free[top - k] = block
      block = next[block] as number
    }
    this.#freeCount += count
  }

  /** Drops every page (after the tier released all its records). */
  reset(): void {
    this.#pages = []
    this.#next = new Int32Array(0)
    this.#free = new Int32Array(0)
    this.#freeCount = 0
  }

  #page(block: number): Buffer {
    return this.#pages[block >>> PAGE_SHIFT] as Buffer
  }

  #offset(block: number): number {
    return (block & (PAGE_BLOCKS - 1)) << BLOCK_SHIFT
  }

  #scratchFor(bytes: number): Buffer {
    if (this.#scratch.length < bytes) this.#scratch = Buffer.allocUnsafeSlow(bytes)
    return this.#scratch
  }

  #addPage(): void {
    const first = this.#pages.length * PAGE_BLOCKS
    const blocks = first + PAGE_BLOCKS
    // NB: not zero-filled: a block is always written before it is read, and only its written bytes are read.
    this.#pages.push(Buffer.allocUnsafeSlow(PAGE_BLOCKS * BLOCK_BYTES))
    const next = new Int32Array(blocks)
    next.set(this.#next)
    this.#next = next
    const free = new Int32Array(blocks)
    free.set(this.#free.subarray(0, this.#freeCount))
    // NB: the new page's blocks go under the free blocks already there, highest first, so they are popped last
    // and in ascending order.
    free.copyWithin(PAGE_BLOCKS, 0, this.#freeCount)
    for (let k = 0; k < PAGE_BLOCKS; k++) free[k] = blocks - 1 - k
    this.#freeCount += PAGE_BLOCKS
    this.#free = free
  }
}
