import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectAs } from './flow.js';
import { type Stack, startStack } from './stack.js';

describe('graceful stop (real Ory Hydra)', () => {
  let stack: Stack;
  beforeAll(async () => {
    stack = await startStack({ accessTokenStrategy: 'opaque', database: 'sqlite' });
  });
  afterAll(async () => {
    await stack?.stop();
  });

  it('lets a call in flight finish, then refuses new connections', async () => {
    const user = await stack.addUser('hana@example.com', 'hana password 1');
    const { client } = await connectAs(stack, user);
    let progressed!: () => void;
    const started = new Promise<void>((r) => (progressed = r));
    const call = client.callTool({ name: 'long_task', arguments: { seconds: 2 } }, undefined, { onprogress: () => progressed() });
    await started;
    const stopping = stack.server.stop();
    const result = await call;
    expect(result.isError).toBeFalsy();
    expect(result.content).toEqual([{ type: 'text', text: '{"completed":2}' }]);
    await stopping;
    await expect(fetch(`${stack.baseUrl}/healthz`)).rejects.toThrow();
  });
});
