// The reference for management-overhead.ts: a bare Fastify server answering one route with a
// fixed JSON body (no auth, no store, no validation). Prints its URL when listening.
import Fastify from 'fastify';

const [path = '/', body = '{}'] = process.argv.slice(2);
const app = Fastify({ logger: false });
app.get(path, async (_req, reply) => reply.type('application/json').send(body));
await app.listen({ host: '127.0.0.1', port: 0 });
const addr = app.server.address();
process.stdout.write(`listening http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}\n`);
