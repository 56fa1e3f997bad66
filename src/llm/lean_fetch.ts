/**
 * A `fetch` for the openai SDK whose streamed bodies cost what they carry. Deno's fetch puts
 * every chunk of a response body in a fresh 64 KiB buffer, and a streamed reply is one chunk
 * per token (llama-server writes each event on its own): 20,000 tokens allocated 1.3 GB, and
 * the garbage collector ran longer than the SDK parsed. Here the body is read into one
 * buffer, reused, and each chunk is copied out at its own size.
 *
 * @module
 */

/** The buffer a body is read into; a chunk larger than this comes in several reads. */
const READ_SIZE = 64 * 1024;

/**
 * `body` read through one reused buffer: the same bytes in the same chunks, each in an array
 * of its own size. A body that cannot be read that way (not a byte stream) is returned as it is.
 *
 * It is a stream, and also iterable on its own (`sse.ts` iterates it), straight
 * from the reused buffer, without a second stream's queue between. Either way it reads only
 * when asked (nothing is read ahead into a queue the other way would not see), one read at a
 * time.
 */
export function leanBody(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  let reader: ReadableStreamBYOBReader;
  try {
    reader = body.getReader({ mode: "byob" });
  } catch {
    return body;
  }
  let buffer = new ArrayBuffer(READ_SIZE);
  let reading: Promise<unknown> = Promise.resolve();
  const read = async (): Promise<IteratorResult<Uint8Array, undefined>> => {
    const { value, done } = await reader.read(new Uint8Array(buffer));
    if (value) buffer = value.buffer; // handed back after the read
    return done || !value
      ? { done: true, value: undefined }
      : { done: false, value: value.slice() };
  };
  // The buffer is lent to one read at a time.
  const next = () => {
    const result = reading.then(read);
    reading = result.catch(() => {});
    return result;
  };
  const lean = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const { value, done } = await next();
      if (done) controller.close();
      else controller.enqueue(value);
    },
    cancel: (reason) => reader.cancel(reason),
  }, { highWaterMark: 0 });
  const iterator: AsyncIterableIterator<Uint8Array> = {
    next,
    async return() {
      await reader.cancel();
      return { done: true, value: undefined };
    },
    [Symbol.asyncIterator]: () => iterator,
  };
  Object.defineProperty(lean, Symbol.asyncIterator, { value: () => iterator });
  return lean;
}

/**
 * `fetch`, with the body of an event stream (`text/event-stream`) read by {@linkcode leanBody};
 * every other response is fetch's own.
 */
export async function leanFetch(
  input: string | URL | Request,
  init?: RequestInit,
): Promise<Response> {
  return leanResponse(await fetch(input, init));
}

/** `res`, with the body of an event stream read by {@linkcode leanBody}; any other as it is. */
export function leanResponse(res: Response): Response {
  const type = res.headers.get("content-type") ?? "";
  if (!res.body || !type.startsWith("text/event-stream")) return res;
  const lean = new Response(leanBody(res.body), {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
  // What the SDK says in its errors and logs: where the reply came from.
  Object.defineProperty(lean, "url", { value: res.url });
  return lean;
}
