import { createHmac } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { Signer } from '../src/middleware/signature.js'

/** The format, as express-session's cookie-signature defines it. */
const cookieSignature = {
  sign: (value: string, secret: string) =>
    `${value}.${createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')}`,
}

describe('Signer (express-session cookie signatures)', () => {
  it("signs in express-session's format (cookie-signature), and verifies its signatures", () => {
    const signer = new Signer(['s3cret'])
    for (const sid of ['abc', 'Xx3kT0y0mR0v2s9dEwq1aZ3kT0y0mR0v', 'with.dot']) {
      expect(signer.sign(sid)).toBe(cookieSignature.sign(sid, 's3cret'))
      expect(signer.unsign(cookieSignature.sign(sid, 's3cret'))).toEqual({ value: sid, secretIndex: 0 })
    }
  })

  it('says which secret verified (rotation) and rejects forgeries, also for values it has seen', () => {
    const signer = new Signer(['new', 'old'])
    const fromOld = cookieSignature.sign('sid-1', 'old')
    expect(signer.unsign(fromOld)).toEqual({ value: 'sid-1', secretIndex: 1 })
    expect(signer.unsign(fromOld)).toEqual({ value: 'sid-1', secretIndex: 1 })
    const forged = `${fromOld.slice(0, -1)}${fromOld.endsWith('A') ? 'B' : 'A'}`
    expect(signer.unsign(forged)).toBeUndefined()
    expect(signer.unsign(cookieSignature.sign('sid-1', 'other'))).toBeUndefined()
    expect(signer.unsign('sid-1.')).toBeUndefined()
    expect(signer.unsign('no-dot')).toBeUndefined()
    expect(signer.unsign(`${fromOld}x`)).toBeUndefined()
  })

  it('stays correct past the number of values it remembers', () => {
    const signer = new Signer(['k'])
    const signed = Array.from({ length: 12_000 }, (_, i) => cookieSignature.sign(`sid-${i}`, 'k'))
    for (const s of signed) expect(signer.unsign(s)?.value).toBe(s.slice(0, s.lastIndexOf('.')))
    for (const s of signed.slice(0, 100)) expect(signer.unsign(s)?.secretIndex).toBe(0)
    expect(signer.unsign(`${signed[0]?.slice(0, -2)}zz`)).toBeUndefined()
  })
})
