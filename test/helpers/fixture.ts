import type { Test } from 'tap'
import type { AppOptions } from '../../src/app.js'
import { type RunningProxy, startProxy } from './proxy.js'
import { type Registry, type RegistryOptions, startRegistry } from './registry.js'

// The set-up most tests repeat, each part stopped when the test ends: a real registry, and
// the proxy in front of one.

export async function registryFor(t: Test, options: RegistryOptions = {}): Promise<Registry> {
  const registry = await startRegistry(options)
  t.teardown(() => registry.stop())
  return registry
}

export async function proxyFor(t: Test, upstream: string, values: Record<string, unknown> = {}, options: AppOptions = {}): Promise<RunningProxy> {
  const proxy = await startProxy(upstream, values, options)
  t.teardown(() => proxy.close())
  return proxy
}
