// The Baileys peer of wastore's benchmark harness (python -m benchmarks):
// W1d and W3 on Baileys' useMultiFileAuthState (one JSON file per key).
//
// It reads the harness's data file (a JSON header line, then raw sections:
// see benchmarks/data.py) so that it stores the very bytes the Python
// implementations store, and prints one JSON object.
//
// What one operation is (Baileys' own key names and value shapes):
// - W1d: keys.get('identity-key', [addr]), keys.get('session', [addr]),
//   keys.set({ session: { [addr]: <1,200-byte Buffer> } })  — addr is the
//   libsignal address "user.device", as Baileys' signal repository uses.
// - W3: keys.set({ 'pre-key': { id: { private, public } x 812 } }) (one call),
//   then "mark uploaded" — Baileys has no per-key flag: it advances
//   creds.firstUnuploadedPreKeyId and saves creds.json (saveCreds) — then
//   812 x (keys.get('pre-key', [id]), keys.set({ 'pre-key': { [id]: null } })).
//
// usage: node bench.mjs W1d|W3 --data FILE --dir DIR [--ops N] [--warmup N]
//        [--reps N] [--cycles N]

import { readFileSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { useMultiFileAuthState } from '@whiskeysockets/baileys'

function parseArgs(argv) {
  const out = { workload: argv[0], ops: 1000, warmup: 200, reps: 5, cycles: 1 }
  for (let i = 1; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '')
    const value = argv[i + 1]
    out[key] = ['data', 'dir'].includes(key) ? value : Number(value)
  }
  return out
}

function readData(path) {
  const raw = readFileSync(path)
  const nl = raw.indexOf(0x0a)
  const header = JSON.parse(raw.subarray(0, nl).toString('utf8'))
  const body = raw.subarray(nl + 1)
  const sections = {}
  for (const [name, [off, len]] of Object.entries(header.sections)) {
    sections[name] = body.subarray(off, off + len)
  }
  return { header, sections }
}

function chunks(buf, size) {
  const out = []
  for (let i = 0; i < buf.length; i += size) out.push(Buffer.from(buf.subarray(i, i + size)))
  return out
}

async function runReps(reps, ops, run) {
  const runs = []
  for (let rep = 0; rep < reps; rep++) {
    if (global.gc) global.gc()
    const t0 = performance.now()
    await run(rep)
    runs.push(ops / ((performance.now() - t0) / 1000))
  }
  return runs
}

async function w1d(args, { header, sections }) {
  const { state } = await useMultiFileAuthState(await mkdtemp(join(args.dir, 'baileys-w1-')))
  const keys = state.keys
  const addrs = header.peer_users.map((u, i) => `${u}.${header.peer_devices[i]}`)
  const sessions = chunks(sections.sessions, header.record)
  const identities = chunks(sections.identities, header.identity)
  const opPeers = []
  for (let i = 0; i < sections.op_peers.length; i += 4) opPeers.push(sections.op_peers.readUInt32LE(i))
  const opRecords = chunks(sections.op_records, header.record)
  const ops = Math.min(args.ops, opPeers.length)
  // pre-fill (not timed)
  for (let i = 0; i < addrs.length; i += 200) {
    const session = {}
    const identity = {}
    for (let j = i; j < Math.min(i + 200, addrs.length); j++) {
      session[addrs[j]] = sessions[j]
      identity[addrs[j]] = identities[j]
    }
    await keys.set({ session, 'identity-key': identity })
  }
  const seq = opPeers.slice(0, ops).map((p, k) => [addrs[p], opRecords[k]])
  const warm = seq.slice(0, Math.max(1, Math.min(seq.length, args.warmup)))
  const run = async (items) => {
    for (const [addr, rec] of items) {
      const { [addr]: ik } = await keys.get('identity-key', [addr])
      const { [addr]: sess } = await keys.get('session', [addr])
      if (!ik || !sess) throw new Error(`missing state for ${addr}`)
      await keys.set({ session: { [addr]: rec } })
    }
  }
  await run(warm)
  const runs = await runReps(args.reps, ops, () => run(seq))
  return { runs, ops }
}

async function w3(args, { header, sections }) {
  const { state, saveCreds } = await useMultiFileAuthState(
    await mkdtemp(join(args.dir, 'baileys-w3-'))
  )
  const keys = state.keys
  const records = chunks(sections.prekeys, header.prekey_record)
  const n = records.length
  let cycle = 0
  let spent = 0
  const oneCycle = async () => {
    const base = 1 + cycle * n
    cycle++
    const batch = {}
    const ids = []
    records.forEach((r, i) => {
      batch[base + i] = { private: r.subarray(0, 32), public: r.subarray(32, 64) }
      ids.push(String(base + i))
    })
    const t0 = performance.now()
    await keys.set({ 'pre-key': batch })
    state.creds.nextPreKeyId = base + n
    state.creds.firstUnuploadedPreKeyId = base + n
    await saveCreds()
    for (const id of ids) {
      const { [id]: kp } = await keys.get('pre-key', [id])
      if (!kp) throw new Error(`missing pre-key ${id}`)
      await keys.set({ 'pre-key': { [id]: null } })
    }
    spent += performance.now() - t0
  }
  await oneCycle() // warm-up
  const runs = []
  for (let rep = 0; rep < args.reps; rep++) {
    if (global.gc) global.gc()
    spent = 0
    for (let c = 0; c < args.cycles; c++) await oneCycle()
    runs.push(args.cycles / (spent / 1000))
  }
  return { runs, ops: args.cycles }
}

const args = parseArgs(process.argv.slice(2))
const data = readData(args.data)
const fn = { W1d: w1d, W3: w3 }[args.workload]
if (!fn) throw new Error(`unknown workload ${args.workload}`)
const out = await fn(args, data)
const require = createRequire(import.meta.url)
out.node = process.version
out.baileys = require('@whiskeysockets/baileys/package.json').version
process.stdout.write(JSON.stringify(out) + '\n')
