#!/usr/bin/env node
// kafkajs 2.2 as an admin and an idempotent producer; prints what it saw as JSON.
//
// Usage: node tests/clients/kafkajs_admin_produce.mjs BOOTSTRAP TOPIC [RECORDS] [TIMEOUT_S]
//
// Admin: create TOPIC (2 partitions, retention.ms=86400000) and TOPIC-doomed,
// grow TOPIC to 3 partitions, describe its configs, set retention.ms to
// 3600000 (AlterConfigs) and describe again, delete TOPIC-doomed and list
// topics. Producer (idempotent, gzip): RECORDS (default 200) keyed records
// with a header to partition 1, in sends of 50. Then the topic's offsets.
// kafkajs consumers need consumer groups, which the node does not serve yet:
// the caller reads the records back with another client.
//
// Prints one JSON object on stdout; exits 1 (with the error on stderr) on any
// failure or after TIMEOUT_S (default 60).
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'

const { Kafka, logLevel, CompressionTypes, ConfigResourceTypes } = kafkajs
const { version } = createRequire(import.meta.url)('kafkajs/package.json')

const [bootstrap, topic, countArg, timeoutArg] = process.argv.slice(2)
if (!bootstrap || !topic) {
  console.error('usage: kafkajs_admin_produce.mjs BOOTSTRAP TOPIC [RECORDS] [TIMEOUT_S]')
  process.exit(2)
}
const count = Number(countArg ?? 200)
const timeoutMs = 1000 * Number(timeoutArg ?? 60)
const PARTITION = 1
const SEND_SIZE = 50

// Hard deadline: kafkajs retries with backoff, so its own timeouts don't bound the total.
const watchdog = setTimeout(() => {
  console.error(`error: not done with ${bootstrap} within ${timeoutMs / 1000}s`)
  process.exit(1)
}, timeoutMs)

const kafka = new Kafka({
  clientId: 'eddy-e2e-kafkajs',
  brokers: bootstrap.split(','),
  connectionTimeout: 3000,
  requestTimeout: 10000,
  retry: { retries: 2 },
  logLevel: logLevel.ERROR,
  // Errors only, one line each, on stderr (stdout is reserved for the JSON).
  logCreator: () => ({ namespace, log }) => console.error(`kafkajs ${namespace}: ${log.message}`),
})

async function describe(admin) {
  const { resources } = await admin.describeConfigs({
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
    includeSynonyms: false,
  })
  const configs = {}
  for (const entry of resources[0].configEntries) {
    configs[entry.configName] = [entry.configValue, entry.isDefault]
  }
  return { error_code: resources[0].errorCode, configs }
}

const admin = kafka.admin()
const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
try {
  const out = { client: 'kafkajs', client_version: version }
  await admin.connect()
  const doomed = `${topic}-doomed`
  out.created = await admin.createTopics({
    topics: [
      { topic, numPartitions: 2, configEntries: [{ name: 'retention.ms', value: '86400000' }] },
      { topic: doomed, numPartitions: 1 },
    ],
    waitForLeaders: true,
  })
  await admin.createPartitions({ topicPartitions: [{ topic, count: 3 }] })
  const metadata = await admin.fetchTopicMetadata({ topics: [topic] })
  out.partitions = metadata.topics[0].partitions.map(p => p.partitionId).sort()
  out.configs_before = await describe(admin)
  await admin.alterConfigs({
    resources: [
      {
        type: ConfigResourceTypes.TOPIC,
        name: topic,
        configEntries: [{ name: 'retention.ms', value: '3600000' }],
      },
    ],
  })
  out.configs_after = await describe(admin)
  await admin.deleteTopics({ topics: [doomed] })
  out.topics_after_delete = (await admin.listTopics()).sort()

  await producer.connect()
  out.produced = []
  for (let start = 0; start < count; start += SEND_SIZE) {
    const messages = []
    for (let i = start; i < Math.min(count, start + SEND_SIZE); i++) {
      messages.push({
        partition: PARTITION,
        key: `key-${i}`,
        value: `kafkajs record ${i}`,
        headers: { index: String(i) },
      })
    }
    const metadata = await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages })
    out.produced.push(
      ...metadata.map(m => ({ partition: m.partition, error_code: m.errorCode, base_offset: Number(m.baseOffset) }))
    )
  }
  out.offsets = (await admin.fetchTopicOffsets(topic))
    .map(p => ({ partition: p.partition, low: Number(p.low), high: Number(p.high) }))
    .sort((a, b) => a.partition - b.partition)
  await producer.disconnect()
  await admin.disconnect()
  console.log(JSON.stringify(out))
  clearTimeout(watchdog)
} catch (e) {
  console.error(`error: ${e.name}: ${e.message}`)
  process.exit(1)
}
