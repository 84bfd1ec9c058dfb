// The memory tier's payload region: session texts as UTF-8 bytes in 128-byte blocks of 1 MiB pages allocated
// outside the V8 heap, each payload a chain of blocks. It keeps session text out of V8's old generation, where
// every spilled string would otherwise wait as garbage for a mark-compact (README, Performance: RSS).

/** Bytes per block: a payload takes ceil(bytes / BLOCK_BYTES) blocks (at least one). */
export const BLOCK_BYTES = 128
const BLOCK_SHIFT = 7
const BLOCK_WORDS = BLOCK_BYTES / 4
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
  /** The same pages as 32-bit words: blocks are copied word by word (Buffer#copy allocates a view per call). */
  #words: Int32Array[] = []
  /** Next block of each block's chain (NO_BLOCK at a chain's end). */
  #next = new Int32Array(0)
  /** Stack of free blocks; the top is the next one handed out. */
  #free = new Int32Array(0)
  #freeCount = 0
  /** Where chains that are not contiguous are assembled (grows to the largest payload seen). */
  #scratch = Buffer.allocUnsafeSlow(16 * 1024)
  #scratchWords = new Int32Array(this.#scratch.buffer, this.#scratch.byteOffset, this.#scratch.length / 4)

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
    this.#scratchFor(bytes).write(payload, 0, bytes, 'utf8')
    const scratch = this.#scratchWords
    let block = head
    for (let from = 0; from < bytes; from += BLOCK_BYTES) {
      // NB: whole blocks of words: the bytes past the payload's end are never read.
      const page = this.#words[block >>> PAGE_SHIFT] as Int32Array
      const at = (block & (PAGE_BLOCKS - 1)) * BLOCK_WORDS
      const src = from >>> 2
      for (let w = 0; w < BLOCK_WORDS; w++) page[at + w] = scratch[src + w] as number
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
    const words = this.#scratchWords
    block = head
    for (let from = 0; from < bytes; from += BLOCK_BYTES) {
      const page = this.#words[block >>> PAGE_SHIFT] as Int32Array
      const at = (block & (PAGE_BLOCKS - 1)) * BLOCK_WORDS
      const dst = from >>> 2
      for (let w = 0; w < BLOCK_WORDS; w++) words[dst + w] = page[at + w] as number
      block = next[block] as number
    }
    return scratch.toString('utf8', 0, bytes)
  }

  /** Copies the UTF-8 bytes of the payload whose chain starts at `head` into `target` at `at` (no string made). */
  copyOut(head: number, bytes: number, target: Buffer, at: number): void {
    const next = this.#next
    let block = head
    let from = 0
    // NB: one copy per run of consecutive blocks in a page (usually the whole payload).
    while (from < bytes) {
      const start = block
      let end = from + BLOCK_BYTES
      while (end < bytes) {
        const following = next[block] as number
        if (following !== block + 1 || following >>> PAGE_SHIFT !== start >>> PAGE_SHIFT) break
        block = following
        end += BLOCK_BYTES
      }
      const length = Math.min(end, bytes) - from
      const offset = this.#offset(start)
      this.#page(start).copy(target, at + from, offset, offset + length)
      from += length
      block = next[block] as number
    }
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
    this.#words = []
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

  /** The scratch buffer, grown to whole blocks of at least `bytes`. */
  #scratchFor(bytes: number): Buffer {
    if (this.#scratch.length < bytes) {
      this.#scratch = Buffer.allocUnsafeSlow(blocksFor(bytes) * BLOCK_BYTES)
      this.#scratchWords = new Int32Array(
        this.#scratch.buffer,
        this.#scratch.byteOffset,
        this.#scratch.length / 4,
      )
    }
    return this.#scratch
  }

  #addPage(): void {
    const first = this.#pages.length * PAGE_BLOCKS
    const blocks = first + PAGE_BLOCKS
    // NB: not zero-filled: a block is always written before it is read, and only its written bytes are read.
    const page = Buffer.allocUnsafeSlow(PAGE_BLOCKS * BLOCK_BYTES)
    this.#pages.push(page)
    this.#words.push(new Int32Array(page.buffer, page.byteOffset, page.length / 4))
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
