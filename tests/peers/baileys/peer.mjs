// A Baileys account for wastore's account-moving tests, driven over stdin/stdout.
//
// It runs Baileys' own Signal repository (makeLibSignalRepository) over a
// useMultiFileAuthState folder, exactly as a Baileys socket does, but without a
// socket. The same script runs Baileys 7 (tests/peers/baileys) and Baileys 6
// (tests/peers/baileys6, tests/peers/baileys6-legacy): every call below exists in
// all of them. The test passes ciphertexts between this process and
// python-axolotl as bytes. One JSON request per input line, one JSON reply per
// output line
// ({"ok": ...} or {"error": "..."}); binary values are base64.
//
// Requests (field "op"):
//   open           {folder, me?, creds?, preKeys?}  load or create the folder; set creds
//                  fields (BufferJSON-revived); generate pre-keys as Baileys uploads them;
//                  the reply names the Baileys version that runs
//   address        {jid}                            -> {address}: Baileys' Signal address
//   session        {jid, bundle}                    start a session from a pre-key bundle
//   encrypt        {jid, data}                      -> {type: "pkmsg"|"msg", ciphertext}
//   decrypt        {jid, type, ciphertext}          -> {plaintext}
//   group_encrypt  {group, me, data}                -> {ciphertext, skdm}
//   process_skdm   {group, author, skdm}
//   group_decrypt  {group, author, ciphertext}      -> {plaintext}
//   bookkeeping    {...}                            write the protocol bookkeeping a socket
//                                                   writes (LID mappings, device lists, ...;
//                                                   Baileys 6 keeps only some of them)
//   quit

import { readFileSync } from 'node:fs'
import { createInterface } from 'node:readline'
import * as baileysModule from '@whiskeysockets/baileys'
import * as signalModule from '@whiskeysockets/baileys/lib/Signal/libsignal.js'

// Baileys 6.7.19 and later are ES modules; the releases before are CommonJS, whose
// exports an ES module import finds on the default export
const exportsOf = (ns) => (ns.proto || ns.makeLibSignalRepository ? ns : ns.default)
const { BufferJSON, addTransactionCapability, getNextPreKeys, proto, useMultiFileAuthState } =
  exportsOf(baileysModule)
const { makeLibSignalRepository } = exportsOf(signalModule)

// Baileys' repository logs through a pino-like logger; this one is silent.
const logger = {
  level: 'silent',
  child() { return this },
  trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}
}

// libsignal-node reports session changes with console.info/warn: keep stdout for replies.
for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace']) {
  console[name] = (...args) => process.stderr.write(args.map(String).join(' ') + '\n')
}

// Read from the installed package, so that the test sees which Baileys really answers.
const BAILEYS_VERSION = JSON.parse(
  readFileSync(new URL('./node_modules/@whiskeysockets/baileys/package.json', import.meta.url))
).version

const b64 = (buf) => Buffer.from(buf).toString('base64')
const bytes = (text) => Buffer.from(text, 'base64')
const revive = (value) => JSON.parse(JSON.stringify(value), BufferJSON.reviver)

let auth = null
let saveCreds = null
let keys = null
let repo = null

async function open({ folder, me, creds, preKeys }) {
  const loaded = await useMultiFileAuthState(folder)
  auth = loaded.state
  saveCreds = loaded.saveCreds
  if (me) auth.creds.me = me
  if (creds) Object.assign(auth.creds, revive(creds))
  keys = addTransactionCapability(auth.keys, logger, { maxCommitRetries: 3, delayBetweenTriesMs: 10 })
  repo = makeLibSignalRepository({ creds: auth.creds, keys }, logger)
  let published = []
  if (preKeys) {
    // what a socket does before it uploads pre-keys (uploadPreKeys)
    const { update, preKeys: generated } = await getNextPreKeys({ creds: auth.creds, keys }, preKeys)
    Object.assign(auth.creds, update)
    published = Object.entries(generated).map(([id, pair]) => ({
      id: Number(id),
      public: b64(Buffer.concat([Buffer.from([5]), pair.public]))
    }))
  }
  await saveCreds()
  const { creds: c } = auth
  return {
    baileys: BAILEYS_VERSION,
    registrationId: c.registrationId,
    identity: b64(Buffer.concat([Buffer.from([5]), c.signedIdentityKey.public])),
    signedPreKey: {
      id: c.signedPreKey.keyId,
      public: b64(Buffer.concat([Buffer.from([5]), c.signedPreKey.keyPair.public])),
      signature: b64(c.signedPreKey.signature)
    },
    preKeys: published
  }
}

async function startSession({ jid, bundle }) {
  const session = {
    registrationId: bundle.registrationId,
    identityKey: bytes(bundle.identity),
    signedPreKey: {
      keyId: bundle.signedPreKey.id,
      publicKey: bytes(bundle.signedPreKey.public),
      signature: bytes(bundle.signedPreKey.signature)
    }
  }
  if (bundle.preKey) {
    session.preKey = { keyId: bundle.preKey.id, publicKey: bytes(bundle.preKey.public) }
  }
  await repo.injectE2ESession({ jid, session })
  return {}
}

async function bookkeeping(req) {
  // The values a socket stores, written the way the socket writes them.
  if (req.lidMappings) {
    // Baileys 7's LID mapping store; Baileys 6 has none
    if (!repo.lidMapping) throw new Error(`Baileys ${BAILEYS_VERSION} keeps no LID mappings`)
    await repo.lidMapping.storeLIDPNMappings(req.lidMappings)
  }
  if (req.deviceLists) await keys.set({ 'device-list': req.deviceLists })
  if (req.senderKeyMemory) await keys.set({ 'sender-key-memory': req.senderKeyMemory })
  if (req.tcTokens) {
    const tokens = {}
    for (const [jid, t] of Object.entries(req.tcTokens)) {
      tokens[jid] = { token: bytes(t.token), timestamp: t.timestamp }
      if (t.senderTimestamp !== undefined) tokens[jid].senderTimestamp = t.senderTimestamp
    }
    await keys.set({ tctoken: tokens })
  }
  if (req.appStateSyncKeys) {
    // as processMessage stores an APP_STATE_SYNC_KEY_SHARE: the decoded protobuf object
    for (const k of req.appStateSyncKeys) {
      const keyData = proto.Message.AppStateSyncKeyData.decode(
        proto.Message.AppStateSyncKeyData.encode({
          keyData: bytes(k.keyData),
          fingerprint: k.fingerprint,
          timestamp: k.timestamp
        }).finish()
      )
      await keys.set({ 'app-state-sync-key': { [k.keyId]: keyData } })
    }
    auth.creds.myAppStateKeyId = req.appStateSyncKeys[req.appStateSyncKeys.length - 1].keyId
  }
  if (req.appStateVersions) {
    // as the app-state sync stores an LTHashState
    for (const [name, s] of Object.entries(req.appStateVersions)) {
      const indexValueMap = {}
      for (const [index, valueMac] of Object.entries(s.macs)) {
        indexValueMap[index] = { valueMac: bytes(valueMac) }
      }
      await keys.set({
        'app-state-sync-version': { [name]: { version: s.version, hash: bytes(s.hash), indexValueMap } }
      })
    }
  }
  await saveCreds()
  return {}
}

const handlers = {
  open,
  session: startSession,
  async address({ jid }) {
    return { address: repo.jidToSignalProtocolAddress(jid) }
  },
  async encrypt({ jid, data }) {
    const { type, ciphertext } = await repo.encryptMessage({ jid, data: bytes(data) })
    return { type, ciphertext: b64(ciphertext) }
  },
  async decrypt({ jid, type, ciphertext }) {
    const plaintext = await repo.decryptMessage({ jid, type, ciphertext: bytes(ciphertext) })
    return { plaintext: b64(plaintext) }
  },
  async group_encrypt({ group, me, data }) {
    const { ciphertext, senderKeyDistributionMessage } = await repo.encryptGroupMessage({
      group, meId: me, data: bytes(data)
    })
    return { ciphertext: b64(ciphertext), skdm: b64(senderKeyDistributionMessage) }
  },
  async process_skdm({ group, author, skdm }) {
    await repo.processSenderKeyDistributionMessage({
      item: { groupId: group, axolotlSenderKeyDistributionMessage: bytes(skdm) },
      authorJid: author
    })
    return {}
  },
  async group_decrypt({ group, author, ciphertext }) {
    const plaintext = await repo.decryptGroupMessage({ group, authorJid: author, msg: bytes(ciphertext) })
    return { plaintext: b64(plaintext) }
  },
  bookkeeping
}

const lines = createInterface({ input: process.stdin })
for await (const line of lines) {
  if (!line.trim()) continue
  const req = JSON.parse(line)
  if (req.op === 'quit') break
  let reply
  try {
    const handler = handlers[req.op]
    if (!handler) throw new Error(`unknown op ${req.op}`)
    reply = { ok: await handler(req) }
  } catch (err) {
    reply = { error: `${err && err.name}: ${err && err.message}` }
  }
  process.stdout.write(JSON.stringify(reply) + '\n')
}
process.exit(0)
