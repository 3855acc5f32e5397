/**
 * A response body that passes through until `marker` has been seen, then ends
 * as a dropped connection would (the rest is never read): for tests of
 * resuming a stream with Last-Event-ID.
 */
export function cutAfter(marker: string): (body: ReadableStream<Uint8Array>) => ReadableStream<Uint8Array> {
  return (body) => {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let seen = '';
    return new ReadableStream<Uint8Array>({
      async pull(controller) {
        const { done, value } = await reader.read();
        if (done) return controller.close();
        controller.enqueue(value);
        seen += decoder.decode(value, { stream: true });
        if (seen.includes(marker)) {
          await reader.cancel();
          controller.close();
        }
      },
    });
  };
}
