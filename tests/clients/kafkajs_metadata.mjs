#!/usr/bin/env node
// Fetch cluster metadata with kafkajs 2.2 and print it as JSON.
//
// Usage: node tests/clients/kafkajs_metadata.mjs BOOTSTRAP [TIMEOUT_S]
//
// Prints one JSON object on stdout; exits 1 (with the error on stderr) if the
// cluster cannot be reached or answers with an error within TIMEOUT_S (default 20).
import { createRequire } from 'node:module'
import kafkajs from 'kafkajs'

const { Kafka, logLevel } = kafkajs
const { version } = createRequire(import.meta.url)('kafkajs/package.json')

const [bootstrap, timeoutArg] = process.argv.slice(2)
if (!bootstrap) {
  console.error('usage: kafkajs_metadata.mjs BOOTSTRAP [TIMEOUT_S]')
  process.exit(2)
}
const timeoutMs = 1000 * Number(timeoutArg ?? 20)

// Hard deadline: kafkajs retries with backoff, so its own timeouts don't bound the total.
const watchdog = setTimeout(() => {
  console.error(`error: no answer from ${bootstrap} within ${timeoutMs / 1000}s`)
  process.exit(1)
}, timeoutMs)

const kafka = new Kafka({
  clientId: 'eddy-test-kafkajs',
  brokers: bootstrap.split(','),
  connectionTimeout: 3000,
  requestTimeout: 5000,
  retry: { retries: 2 },
  logLevel: logLevel.ERROR,
  // Errors only, one line each, on stderr (stdout is reserved for the JSON).
  logCreator: () => ({ namespace, log }) => console.error(`kafkajs ${namespace}: ${log.message}`),
})

const admin = kafka.admin()
try {
  await admin.connect()
  const cluster = await admin.describeCluster()
  const { topics } = await admin.fetchTopicMetadata() // no topic list: Metadata for all topics
  const out = {
    client: 'kafkajs',
    client_version: version,
    cluster_id: cluster.clusterId ?? null,
    controller_id: cluster.controller,
    brokers: cluster.brokers
      .map(b => ({ node_id: b.nodeId, host: b.host, port: b.port, rack: b.rack ?? null }))
      .sort((a, b) => a.node_id - b.node_id),
    topics: topics
      .map(t => ({
        name: t.name,
        partitions: t.partitions
          .map(p => ({
            partition: p.partitionId,
            error_code: p.partitionErrorCode,
            leader: p.leader,
            replicas: p.replicas,
            isr: p.isr,
          }))
          .sort((a, b) => a.partition - b.partition),
      }))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
  }
  console.log(JSON.stringify(out))
  await admin.disconnect()
  clearTimeout(watchdog)
} catch (e) {
  console.error(`error: ${e.name}: ${e.message}`)
  process.exit(1)
}
