// Points each provider's official SDK at embedwatch-sim and checks that it
// parses the simulator's answers: get (status, counts, output ids), the list
// across pages with the SDK's own pager, cancel (the cancelling word, then
// cancelled on the manual clock), a refused key (the SDK's auth error) and an
// unknown id (its not-found error). Prints TAP; exits 1 when a check fails.
//
//   node tests/sdk/check.mjs http://127.0.0.1:PORT [TOKEN]
//
// The simulator must run with --clock manual. Loopback only: the SDKs are
// given the simulator's URL as their base, and retries are off.
const MIN_NODE = 20;   // @google/genai needs it; Debian 12's nodejs is 18
const major = Number(process.versions.node.split('.')[0]);
if (major < MIN_NODE) {
	console.log(`1..0 # SKIP node >= ${MIN_NODE} needed, found ${process.versions.node}`);
	process.exit(0);
}

const [base, token = 'test-key'] = process.argv.slice(2);
if (!base) {
	console.error('usage: node check.mjs http://127.0.0.1:PORT [TOKEN]');
	process.exit(2);
}

const { default: OpenAI } = await import('openai');
const { default: Anthropic } = await import('@anthropic-ai/sdk');
const { GoogleGenAI, ApiError } = await import('@google/genai');
const { Mistral } = await import('@mistralai/mistralai');
const { SDKError } = await import('@mistralai/mistralai/models/errors');

// ---- TAP ----
let n = 0, failed = 0;
async function check(name, fn) {
	n++;
	try {
		await fn();
		console.log(`ok ${n} - ${name}`);
	} catch (e) {
		failed++;
		console.log(`not ok ${n} - ${name}`);
		for (const line of String(e && e.stack || e).split('\n').slice(0, 6))
			console.log(`  # ${line}`);
	}
}
function expect(cond, what) {
	if (!cond)
		throw new Error(what);
}
function eq(got, want, what) {
	expect(JSON.stringify(got) === JSON.stringify(want), `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
}
async function rejects(promise, test, what) {
	try {
		await promise;
	} catch (e) {
		expect(test(e), `${what}: got ${e && e.constructor && e.constructor.name}: ${e && e.message}`);
		return;
	}
	throw new Error(`${what}: no error raised`);
}

// ---- the simulator's admin interface ----
async function admin(method, path, body) {
	const r = await fetch(base + '/_sim' + path, {
		method, headers: { 'content-type': 'application/json' }, body: body && JSON.stringify(body),
	});
	const doc = await r.json();
	if (!r.ok)
		throw new Error(`${method} /_sim${path}: ${r.status} ${JSON.stringify(doc)}`);
	return doc;
}
const advance = (s) => admin('POST', '/clock', { advance: s });
const listRequests = async (p) => (await admin('GET', '/stats?jobs=0')).providers[p].requests.list;

// Each provider gets five batches: "done" completes at 1 s with counts, "stop" is cancelled, three run on.
function batches(prefix, words, counts) {
	const [start, running, end] = words;
	return { batches: [
		{ id: `${prefix}done`, total: 10, timeline: [{ status: start, at: 0 }, { status: running, at: 0.5, succeeded: 2 },
			{ status: end, at: 1, ...counts }] },
		{ id: `${prefix}stop`, total: 10, cancel_delay: 2, timeline: [{ status: running, at: 0.5 }] },
		...[1, 2, 3].map((i) => ({ id: `${prefix}run${i}`, total: 10, timeline: [{ status: running, at: 0 }] })),
	] };
}

// The items of a whole list, and how many list requests the SDK made for them (list() may ask for the first page).
async function collect(p, list, id) {
	const before = await listRequests(p), ids = [];
	for await (const item of await list())
		ids.push(id(item));
	return { ids, pages: (await listRequests(p)) - before };
}
function listed(got, prefix) {
	const mine = got.ids.filter((id) => id.includes(prefix)).sort();
	eq(mine, [`${prefix}done`, `${prefix}run1`, `${prefix}run2`, `${prefix}run3`, `${prefix}stop`], 'the batches listed');
	expect(got.pages >= 3, `5 batches in pages of 2 took ${got.pages} list requests`);
	eq(new Set(got.ids).size, got.ids.length, 'no batch listed twice');
}

const clock = await admin('GET', '/clock');
if (clock.mode !== 'manual') {
	console.log('1..0 # SKIP the simulator must run with --clock manual');
	process.exit(0);
}

// ---- OpenAI: client.batches ----
{
	const p = 'openai', pre = 'batch_sdk_';
	const client = new OpenAI({ apiKey: token, baseURL: `${base}/v1`, maxRetries: 0 });
	await admin('POST', `/providers/${p}/batches`, batches(pre, ['validating', 'in_progress', 'completed'], { failed: 3 }));
	await advance('1s');
	await check(`${p} get: status, request_counts, output_file_id and error_file_id`, async () => {
		const b = await client.batches.retrieve(`${pre}done`);
		eq([b.id, b.object, b.status], [`${pre}done`, 'batch', 'completed'], 'id, object, status');
		eq(b.request_counts, { total: 10, completed: 7, failed: 3 }, 'request_counts');
		eq([b.output_file_id, b.error_file_id], [`file-out-${pre}done`, `file-err-${pre}done`], 'file ids');
		expect(b.completed_at >= b.created_at && b.expires_at > b.created_at, 'times in epoch seconds');
	});
	await check(`${p} list: every batch over pages of 2 with the SDK's pager (after = last id)`, async () => {
		listed(await collect(p, () => client.batches.list({ limit: 2 }), (b) => b.id), pre);
	});
	await check(`${p} cancel: cancelling, then cancelled`, async () => {
		eq((await client.batches.cancel(`${pre}stop`)).status, 'cancelling', 'the cancel answer');
		await advance('2s');
		const b = await client.batches.retrieve(`${pre}stop`);
		eq(b.status, 'cancelled', 'status after the delay');
		expect(b.cancelling_at && b.cancelled_at >= b.cancelling_at, 'cancelling_at and cancelled_at');
	});
	await check(`${p} 401: AuthenticationError`, () => rejects(
		new OpenAI({ apiKey: 'wrong', baseURL: `${base}/v1`, maxRetries: 0 }).batches.retrieve(`${pre}done`),
		(e) => e instanceof OpenAI.AuthenticationError && e.status === 401 && e.code === 'invalid_api_key', 'a wrong key'));
	await check(`${p} 404: NotFoundError`, () => rejects(client.batches.retrieve('batch_nope'),
		(e) => e instanceof OpenAI.NotFoundError && e.type === 'invalid_request_error', 'an unknown id'));
}

// ---- Anthropic: client.messages.batches ----
{
	const p = 'anthropic', pre = 'msgbatch_sdk_';
	const client = new Anthropic({ apiKey: token, baseURL: base, maxRetries: 0 });
	await admin('POST', `/providers/${p}/batches`, batches(pre, ['in_progress', 'in_progress', 'ended'], { failed: 1, expired: 2 }));
	await advance('1s');
	await check(`${p} get: processing_status, request_counts, results_url`, async () => {
		const b = await client.messages.batches.retrieve(`${pre}done`);
		eq([b.id, b.type, b.processing_status], [`${pre}done`, 'message_batch', 'ended'], 'id, type, status');
		eq(b.request_counts, { processing: 0, succeeded: 7, errored: 1, canceled: 0, expired: 2 }, 'request_counts');
		expect(b.results_url && b.results_url.endsWith(`/v1/messages/batches/${pre}done/results`), `results_url ${b.results_url}`);
		expect(b.ended_at && b.cancel_initiated_at === null && Date.parse(b.expires_at) > Date.parse(b.created_at), 'times');
	});
	await check(`${p} list: every batch over pages of 2 with the SDK's pager (after_id = last_id)`, async () => {
		listed(await collect(p, () => client.messages.batches.list({ limit: 2 }), (b) => b.id), pre);
	});
	await check(`${p} list backwards: before_id pages toward the newest`, async () => {
		const all = [];
		for await (const b of client.messages.batches.list({ limit: 100 }))
			all.push(b.id);
		const page = await client.messages.batches.list({ limit: 2, before_id: all[all.length - 1] });
		eq(page.data.map((b) => b.id), all.slice(-3, -1), 'the page before the oldest');
	});
	await check(`${p} cancel: canceling, then ended with cancel_initiated_at`, async () => {
		const c = await client.messages.batches.cancel(`${pre}stop`);
		eq([c.processing_status, c.results_url], ['canceling', null], 'the cancel answer');
		await advance('2s');
		const b = await client.messages.batches.retrieve(`${pre}stop`);
		eq([b.processing_status, b.request_counts.canceled], ['ended', 10], 'ended, the requests canceled');
		expect(b.cancel_initiated_at && b.ended_at, 'cancel_initiated_at and ended_at');
	});
	await check(`${p} 401: AuthenticationError`, () => rejects(
		new Anthropic({ apiKey: 'wrong', baseURL: base, maxRetries: 0 }).messages.batches.retrieve(`${pre}done`),
		(e) => e instanceof Anthropic.AuthenticationError && e.error?.error?.type === 'authentication_error', 'a wrong key'));
	await check(`${p} 404: NotFoundError`, () => rejects(client.messages.batches.retrieve('msgbatch_nope'),
		(e) => e instanceof Anthropic.NotFoundError && e.error?.error?.type === 'not_found_error', 'an unknown id'));
}

// ---- Gemini: ai.batches (the SDK maps BATCH_STATE_* to JOB_STATE_*; it keeps no counts) ----
{
	const p = 'gemini', pre = 'gsdk';
	const ai = new GoogleGenAI({ apiKey: token, httpOptions: { baseUrl: base } });
	await admin('POST', `/providers/${p}/batches`,
		batches(pre, ['BATCH_STATE_PENDING', 'BATCH_STATE_RUNNING', 'BATCH_STATE_SUCCEEDED'], { failed: 1 }));
	await advance('1s');
	await check(`${p} get: state, name, output file`, async () => {
		const b = await ai.batches.get({ name: `batches/${pre}done` });
		eq([b.name, b.state, b.dest?.fileName], [`batches/${pre}done`, 'JOB_STATE_SUCCEEDED', `files/batch-${pre}done`],
			'name, state, dest.fileName');
		expect(b.createTime && b.endTime && b.model, 'createTime, endTime, model');
	});
	await check(`${p} list: every batch over pages of 2 with the SDK's Pager (pageToken = nextPageToken)`, async () => {
		listed(await collect(p, () => ai.batches.list({ config: { pageSize: 2 } }), (b) => b.name.replace(/^batches\//, '')), pre);
	});
	await check(`${p} cancel: the state stays until it is cancelled`, async () => {
		await ai.batches.cancel({ name: `batches/${pre}stop` });
		eq((await ai.batches.get({ name: `batches/${pre}stop` })).state, 'JOB_STATE_RUNNING', 'state while cancelling');
		await advance('2s');
		eq((await ai.batches.get({ name: `batches/${pre}stop` })).state, 'JOB_STATE_CANCELLED', 'state after the delay');
	});
	await check(`${p} a wrong key: ApiError 400 API_KEY_INVALID (the API's answer; it has no 401 for a key)`, () => rejects(
		new GoogleGenAI({ apiKey: 'wrong', httpOptions: { baseUrl: base } }).batches.get({ name: `batches/${pre}done` }),
		(e) => e instanceof ApiError && e.status === 400 && e.message.includes('API_KEY_INVALID'), 'a wrong key'));
	await check(`${p} 401 (injected): ApiError 401 UNAUTHENTICATED`, async () => {
		await admin('POST', '/faults', { kind: 'status', status: 401, target: p, count: 1 });
		await rejects(ai.batches.get({ name: `batches/${pre}done` }),
			(e) => e instanceof ApiError && e.status === 401 && JSON.parse(e.message).error.status === 'UNAUTHENTICATED',
			'an injected 401');
	});
	await check(`${p} 404: ApiError 404 NOT_FOUND`, () => rejects(ai.batches.get({ name: 'batches/nope' }),
		(e) => e instanceof ApiError && e.status === 404 && JSON.parse(e.message).error.status === 'NOT_FOUND', 'an unknown id'));
}

// ---- Mistral: client.batch.jobs (the SDK validates every answer; its list has no pager: page numbers) ----
{
	const p = 'mistral', pre = 'msdk-';
	const opts = { serverURL: base, retryConfig: { strategy: 'none' } };
	const client = new Mistral({ apiKey: token, ...opts });
	await admin('POST', `/providers/${p}/batches`, batches(pre, ['QUEUED', 'RUNNING', 'SUCCESS'], { failed: 4 }));
	await advance('1s');
	await check(`${p} get: status, counts, output_file and error_file`, async () => {
		const b = await client.batch.jobs.get({ jobId: `${pre}done` });
		eq([b.id, b.status, b.outputFile, b.errorFile], [`${pre}done`, 'SUCCESS', `out-${pre}done`, `err-${pre}done`],
			'id, status, files');
		eq([b.totalRequests, b.succeededRequests, b.failedRequests, b.completedRequests], [10, 6, 4, 10], 'counts');
		expect(b.startedAt && b.completedAt >= b.startedAt, 'startedAt, completedAt');
	});
	await check(`${p} list: every batch over pages of 2 (page, page_size; total says when to stop)`, async () => {
		async function* pages() {
			for (let page = 0, seen = 0, total = 1; seen < total; page++) {
				const r = await client.batch.jobs.list({ page, pageSize: 2 });
				total = r.total;
				seen += r.data.length;
				if (!r.data.length)
					break;
				yield* r.data;
			}
		}
		listed(await collect(p, pages, (b) => b.id), pre);
	});
	await check(`${p} cancel: CANCELLATION_REQUESTED, then CANCELLED`, async () => {
		eq((await client.batch.jobs.cancel({ jobId: `${pre}stop` })).status, 'CANCELLATION_REQUESTED', 'the cancel answer');
		await advance('2s');
		eq((await client.batch.jobs.get({ jobId: `${pre}stop` })).status, 'CANCELLED', 'status after the delay');
	});
	await check(`${p} 401: SDKError 401 (the SDK has no class of its own for it)`, () => rejects(
		new Mistral({ apiKey: 'wrong', ...opts }).batch.jobs.get({ jobId: `${pre}done` }),
		(e) => e instanceof SDKError && e.statusCode === 401, 'a wrong key'));
	await check(`${p} 404: SDKError 404`, () => rejects(client.batch.jobs.get({ jobId: 'nope' }),
		(e) => e instanceof SDKError && e.statusCode === 404 && JSON.parse(e.body).object === 'error', 'an unknown id'));
}

console.log(`1..${n}`);
console.log(`# ${n - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
