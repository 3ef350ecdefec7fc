/**
 * GET /v1/dashboard/stream: the events feed as server-sent events (`text/event-stream`), so open
 * dashboards see state changes as they are stored instead of each polling the API.
 *
 * One reader per app instance (EventHub) asks the database for events newer than the last one it
 * saw, every `pollMs`, only while at least one stream is open, and fans each new event out to all
 * streams: a thousand open dashboards cost one small query per interval, and several verifier
 * processes on one PostgreSQL each see every event (they all read the same table). A client that
 * reconnects with `Last-Event-ID` first gets the events it missed (at most 500).
 */
import type { ServerResponse } from 'node:http';
import type { Kysely } from 'kysely';
import { Type } from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { Database } from '../db/schema.ts';
import { stateChange } from './events.ts';
import { ErrorBody } from './schemas.ts';

export interface StreamEvent {
  readonly id: number;
  readonly agentId: string;
  readonly at: string;
  readonly from: string;
  readonly to: string;
  readonly reason: unknown;
}

const MAX_BACKLOG = 500;
const HEARTBEAT_MS = 15_000;

type Db = Kysely<Database>;

async function eventsAfter(db: Db, after: number, limit: number): Promise<StreamEvent[]> {
  const rows = await db
    .selectFrom('events')
    .selectAll()
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
  return rows.map(stateChange);
}

/** Reads new events while anyone listens and hands each to every listener. */
export class EventHub {
  readonly #db: Db;
  readonly #pollMs: number;
  readonly #subs = new Set<(e: StreamEvent) => void>();
  #last = -1;
  #timer: NodeJS.Timeout | undefined;
  #busy = false;

  constructor(db: Db, pollMs: number) {
    this.#db = db;
    this.#pollMs = pollMs;
  }

  get listeners(): number {
    return this.#subs.size;
  }

  /** Listen; returns the function that stops listening. */
  async subscribe(fn: (e: StreamEvent) => void): Promise<() => void> {
    if (this.#last < 0) {
      const r = await this.#db
        .selectFrom('events')
        .select((eb) => eb.fn.max('id').as('max'))
        .executeTakeFirst();
      this.#last = Math.max(this.#last, Number(r?.max ?? 0));
    }
    this.#subs.add(fn);
    this.#timer ??= setInterval(() => void this.#tick(), this.#pollMs);
    return () => {
      this.#subs.delete(fn);
      if (this.#subs.size === 0) this.stop();
    };
  }

  /** The reader stops; the next subscriber starts it again from the newest event. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#last = -1;
  }

  async #tick(): Promise<void> {
    if (this.#busy || this.#subs.size === 0) return;
    this.#busy = true;
    try {
      for (;;) {
        const batch = await eventsAfter(this.#db, this.#last, MAX_BACKLOG);
        for (const e of batch) {
          this.#last = e.id;
          for (const s of this.#subs) s(e);
        }
        if (batch.length < MAX_BACKLOG) break;
      }
    } catch {
      // the database is away: the streams stay open, the next tick tries again
    } finally {
      this.#busy = false;
    }
  }
}

const frame = (e: StreamEvent): string => `id: ${e.id}\nevent: state\ndata: ${JSON.stringify(e)}\n\n`;

export const dashboardStreamRoutes: FastifyPluginAsyncTypebox<{ db: Db; pollMs: number }> = async (
  app,
  { db, pollMs },
) => {
  const hub = new EventHub(db, pollMs);
  const open = new Set<ServerResponse>();
  // streams never end by themselves: closing the app ends them (or its server waits forever)
  app.addHook('preClose', async () => {
    for (const res of open) res.end();
    hub.stop();
  });

  app.get(
    '/v1/dashboard/stream',
    {
      config: { role: 'read' },
      schema: {
        tags: ['dashboard'],
        description:
          'Server-sent events: `event: state` with an event as JSON per state change; `Last-Event-ID` resumes.',
        headers: Type.Object({ 'last-event-id': Type.Optional(Type.String({ pattern: '^[0-9]{1,15}$' })) }),
        response: { 200: Type.String({ description: 'text/event-stream' }), 401: ErrorBody },
      },
    },
    async (req, reply) => {
      const resume = req.headers['last-event-id'];
      const backlog = resume === undefined ? [] : await eventsAfter(db, Number(resume), MAX_BACKLOG);
      const res = reply.raw;
      reply.hijack();
      res.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        'x-accel-buffering': 'no',
      });
      res.write(`retry: 3000\n: imakit verifier events\n\n`);
      let sent = Number(resume ?? 0);
      for (const e of backlog) {
        res.write(frame(e));
        sent = e.id;
      }
      open.add(res);
      const stop = await hub.subscribe((e) => {
        if (e.id > sent) res.write(frame(e));
      });
      const beat = setInterval(() => res.write(': ping\n\n'), HEARTBEAT_MS);
      const end = () => {
        clearInterval(beat);
        stop();
        open.delete(res);
      };
      res.on('close', end);
    },
  );
};
