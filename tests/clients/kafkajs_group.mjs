#!/usr/bin/env node
// kafkajs 2.2 as a consumer-group member; prints what it saw as JSON.
//
// Usage: node tests/clients/kafkajs_group.mjs BOOTSTRAP TOPIC GROUP COUNT [TIMEOUT_S]
//
// Subscribes to TOPIC from the beginning as a member of GROUP and consumes
// COUNT records with `eachMessage`, committing each record's next offset
// after handling it. Describes the group while it runs, disconnects (leaving
// the group), then reads the group's committed offsets and describes it
// again with the admin client.
//
// Prints one JSON object on stdout; exits 1 (with the error on stderr) on any
// failure or after TIMEOUT_S (default 60).
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'

const { Kafka, logLevel } = kafkajs
const { version } = createRequire(import.meta.url)('kafkajs/package.json')

const [bootstrap, topic, group, countArg, timeoutArg] = process.argv.slice(2)
if (!bootstrap || !topic || !group || !countArg) {
  console.error('usage: kafkajs_group.mjs BOOTSTRAP TOPIC GROUP COUNT [TIMEOUT_S]')
  process.exit(2)
}
const count = Number(countArg)
const timeoutMs = 1000 * Number(timeoutArg ?? 60)

// Hard deadline: kafkajs retries with backoff, so its own timeouts don't bound the total.
const watchdog = setTimeout(() => {
  console.error(`error: not done with ${bootstrap} within ${timeoutMs / 1000}s`)
  process.exit(1)
}, timeoutMs)

const kafka = new Kafka({
  clientId: 'eddy-e2e-kafkajs-group',
  brokers: bootstrap.split(','),
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 5 },
  logLevel: logLevel.ERROR,
  // Errors only, one line each, on stderr (stdout is reserved for the JSON).
  logCreator: () => ({ namespace, log }) => console.error(`kafkajs ${namespace}: ${log.message}`),
})

function summary(description) {
  return {
    state: description.state,
    protocol_type: description.protocolType,
    members: description.members.length,
  }
}

const admin = kafka.admin()
const consumer = kafka.consumer({
  groupId: group,
  sessionTimeout: 6000,
  heartbeatInterval: 500,
  maxWaitTimeInMs: 100,
})
try {
  const out = { client: 'kafkajs', client_version: version, consumed: [] }
  await admin.connect()
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  let allConsumed
  const done = new Promise(resolve => (allConsumed = resolve))
  await consumer.run({
    autoCommit: false,
    eachMessage: async ({ partition, message }) => {
      out.consumed.push([partition, Number(message.offset), message.value.toString()])
      const next = (BigInt(message.offset) + 1n).toString()
      await consumer.commitOffsets([{ topic, partition, offset: next }])
      if (out.consumed.length >= count) allConsumed()
    },
  })
  await done
  const { groups: running } = await admin.describeGroups([group])
  out.described_while_running = summary(running[0])
  await consumer.disconnect()

  const [fetched] = await admin.fetchOffsets({ groupId: group, topics: [topic] })
  out.committed = Object.fromEntries(fetched.partitions.map(p => [String(p.partition), Number(p.offset)]))
  const { groups: after } = await admin.describeGroups([group])
  out.described_after_disconnect = summary(after[0])
  await admin.disconnect()
  console.log(JSON.stringify(out))
  clearTimeout(watchdog)
} catch (e) {
  console.error(`error: ${e.name}: ${e.message}`)
  process.exit(1)
}
