// poolgate's end-to-end kafkajs client, driven by tests/e2e_clients.rs: SASL/OAUTHBEARER with a
// client_credentials token (client_secret_basic) from the token endpoint and the
// logicalCluster/identityPoolId extensions, the way Confluent Cloud documents OAuth clients.
// kafkajs comes from the cache e2e/setup fills (NODE_PATH); every command prints one JSON line.
//
//   node client.js --bootstrap H:P --token-url URL --client-id ID --client-secret S \
//       --cluster LKC --pool POOL produce TOPIC COUNT PREFIX
//   node client.js ... consume TOPIC GROUP COUNT
//   node client.js --bootstrap H:P --plain consume TOPIC GROUP COUNT   (straight to a broker)
'use strict'

const { Kafka, logLevel } = require('kafkajs')

function parse(argv) {
  const opts = { timeout: 30 }
  const rest = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (a === '--plain') opts.plain = true
    else if (a.startsWith('--')) opts[a.slice(2).replace(/-(.)/g, (_, c) => c.toUpperCase())] = argv[++i]
    else rest.push(a)
  }
  opts.command = rest
  return opts
}

const opts = parse(process.argv.slice(2))
const timeoutMs = Number(opts.timeout) * 1000
const tokens = { fetched: 0 }

async function fetchToken() {
  const basic = Buffer.from(`${opts.clientId}:${opts.clientSecret}`).toString('base64')
  const res = await fetch(opts.tokenUrl, {
    method: 'POST',
    headers: {
      authorization: `Basic ${basic}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: 'grant_type=client_credentials',
  })
  if (!res.ok) throw new Error(`token endpoint: HTTP ${res.status}`)
  tokens.fetched++
  return (await res.json()).access_token
}

function kafka() {
  const config = {
    clientId: opts.plain ? 'poolgate-e2e-direct' : `poolgate-e2e-${opts.clientId}`,
    brokers: [opts.bootstrap],
    logLevel: logLevel.NOTHING,
    connectionTimeout: 5000,
    requestTimeout: 10000,
    // Fail fast: the test waits on outcomes, not on retries.
    retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 },
  }
  if (!opts.plain) {
    config.sasl = {
      mechanism: 'oauthbearer',
      oauthBearerProvider: async () => ({
        value: await fetchToken(),
        extensions: { logicalCluster: opts.cluster, identityPoolId: opts.pool },
      }),
    }
  }
  return new Kafka(config)
}

function failure(e) {
  return {
    ok: false,
    error: e.name || 'Error',
    message: String(e.message || e),
    auth_failed: e.name === 'KafkaJSSASLAuthenticationError',
    tokens: tokens.fetched,
  }
}

async function produce(topic, count, prefix) {
  const producer = kafka().producer({ allowAutoTopicCreation: false })
  await producer.connect()
  try {
    const messages = []
    for (let i = 0; i < count; i++) messages.push({ key: `${prefix}-${i}`, value: `${prefix} message ${i}` })
    const acks = await producer.send({ topic, messages, acks: -1 })
    // `delivered`: what send() resolved for; `acks`: what brokers acknowledged, per partition.
    return { ok: true, delivered: count, acks, tokens: tokens.fetched }
  } finally {
    await producer.disconnect()
  }
}

async function consume(topic, group, count) {
  const consumer = kafka().consumer({ groupId: group, sessionTimeout: 10000, heartbeatInterval: 1000 })
  await consumer.connect()
  const values = []
  let crashed = null
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${values.length} of ${count} in time`)), timeoutMs)
      consumer.on(consumer.events.CRASH, ev => {
        crashed = ev.payload.error
        clearTimeout(timer)
        reject(crashed)
      })
      consumer
        .run({
          eachMessage: async ({ message }) => {
            values.push(message.value.toString())
            if (values.length >= count) {
              clearTimeout(timer)
              resolve()
            }
          },
        })
        .catch(reject)
    })
    return { ok: true, values: values.sort(), tokens: tokens.fetched }
  } finally {
    await consumer.disconnect()
  }
}

async function main() {
  const [cmd, topic, a, b] = opts.command
  if (cmd === 'produce') return produce(topic, Number(a), b)
  if (cmd === 'consume') return consume(topic, a, Number(b))
  throw new Error(`unknown command ${cmd}`)
}

const deadline = setTimeout(() => {
  console.log(JSON.stringify({ ok: false, error: 'Timeout', message: 'no outcome in time', auth_failed: false }))
  process.exit(3)
}, timeoutMs + 10000)

main()
  .then(
    out => console.log(JSON.stringify(out)),
    e => console.log(JSON.stringify(failure(e)))
  )
  .finally(() => {
    clearTimeout(deadline)
  })
