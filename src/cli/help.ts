// Help text: a short command list (`tunekv --help`) and, per command, its
// synopsis, every flag on one line and a few examples (`tunekv get --help`,
// `tunekv help get`, `tunekv cluster start --help`). Text only: this file
// is loaded on every run, so it imports nothing.

interface CommandHelp {
  /** The synopsis, after "usage: ". */
  readonly usage: string;
  readonly about: string;
  /** [flag as typed, one line]. */
  readonly flags: readonly (readonly [string, string])[];
  readonly examples: readonly string[];
  /** Shared flag groups appended after `flags`. */
  readonly groups?: readonly ('connection' | 'level')[];
}

const connectionFlags: readonly (readonly [string, string])[] = [
  ['--host HOST[:PORT]', 'talk to this node only (it coordinates); port 7001 when left out'],
  ['--config FILE', 'a connection file (hosts, user, passwordFile, secretFile, tls); or TUNEKV_CONFIG'],
  ['--timeout-ms MS', 'the request deadline'],
  ['--json', 'print exactly one JSON object on stdout (errors too)'],
  ['--user U', 'log in as U (or TUNEKV_USER); needs a password file'],
  ['--password-file F', 'the password, first line of F (or TUNEKV_PASSWORD_FILE)'],
  ['--secret-file F', 'prove the cluster secret instead (or TUNEKV_SECRET_FILE)'],
  ['--tls-ca F', 'connect with TLS, trusting the CA in F'],
  ['--tls-cert F --tls-key F', 'a client certificate for TLS'],
];

const levelFlags: readonly (readonly [string, string])[] = [
  ['--consistency L', 'eventual | quorum (default) | strong'],
];

const dirFlag: readonly [string, string] = ['--dir DIR', 'the cluster\'s directory (default ./data/cluster)'];
const jsonFlag: readonly [string, string] = ['--json', 'print exactly one JSON object on stdout (errors too)'];

const commands: Record<string, CommandHelp> = {
  node: {
    usage: 'tunekv node --id ID --listen HOST:PORT --data DIR [--join HOST:PORT,... | --standby] [flags]',
    about: 'Run one node process in the foreground (SIGINT or SIGTERM stops it cleanly). It logs JSON lines to stdout (or --log-file); it takes no --json.',
    flags: [
      ['--id ID', 'the node\'s id (n1, n2, ...)'],
      ['--listen HOST:PORT', 'the address peers and clients reach it on'],
      ['--data DIR', 'its data directory (LevelDB, ring, hints)'],
      ['--join HOST:PORT,...', 'join the ring through these seeds now'],
      ['--standby', 'wait to be joined (tunekv join, then tunekv commit)'],
      ['--n N', 'replicas per key for a new ring (default 3)'],
      ['--q Q', 'partitions for a new ring (power of two, default 64)'],
      ['--fsync', 'sync every write batch to disk'],
      ['--lww', 'last writer wins: no siblings'],
      ['--metrics HOST:PORT|off', 'the Prometheus endpoint, /health and /ready (default: node port + 2000)'],
      ['--log-level LEVEL', 'trace, debug, info (default), warn, error or fatal'],
      ['--log-file FILE', 'append the JSON log lines to FILE instead of stdout'],
      ['--timeout-ms MS', 'the default request deadline'],
      ['--transfer-mbps MBPS', 'the limit for partition transfers'],
      ['--transfer-interval-ms MS', 'how often transfers are scheduled'],
      ['--read-repair-chance P', 'chance a read repairs stale replicas it did not wait for'],
      ['--speculative-retry-ms MS', 'ask one more replica after this long'],
      ['--cache-mb MB', 'the object cache'],
      ['--heap-growth-percent P', 'V8 heap growth between full collections'],
      ['--gossip-ms, --suspect-ms, --down-ms MS', 'the failure detector\'s timing'],
      ['--handoff-ms MS, --handoff-keys-per-sec N, --hint-age-ms MS', 'hinted handoff timing and rate'],
      ['--aae-interval-ms MS, --aae-keys-per-sec N', 'anti-entropy timing and rate'],
      ['--reap-delay-ms MS', 'how long tombstones wait before they are reaped'],
      ['--secret-file F', 'the cluster secret peers prove'],
      ['--users-file F', 'users and roles clients log in as'],
      ['--tls-cert F --tls-key F [--tls-ca F]', 'serve TLS'],
    ],
    examples: [
      'tunekv node --id n1 --listen 10.0.0.1:7001 --data /var/lib/tunekv --secret-file /etc/tunekv/cluster.secret',
      'tunekv node --id n2 --listen 10.0.0.2:7001 --data /var/lib/tunekv --join 10.0.0.1:7001',
    ],
  },
  'cluster start': {
    usage: 'tunekv cluster start [--nodes 3] [--base-port 7001] [--metrics-base-port N] [--dir DIR] [--n 3] [--q 64] [--fsync] [--detach] [--distinct-addresses | --host H]',
    about: 'Start a local cluster (or restart the stopped one in --dir on its data and ports); returns once every node answers and sees the whole ring.',
    flags: [
      ['--nodes K', 'nodes of a new cluster (default 3; a restart keeps the ones cluster.json lists)'],
      ['--base-port P', 'node i listens on P + i - 1 (default 7001; 0 picks free ports)'],
      ['--metrics-base-port N', 'metrics on N, N+1, ...; 0 picks free ports; default base port + 2000'],
      dirFlag,
      ['--n N', 'replicas per key (default 3)'],
      ['--q Q', 'partitions (default 64)'],
      ['--fsync', 'nodes sync every write batch'],
      ['--detach', 'return once ready, leaving the nodes running'],
      ['--distinct-addresses', 'node i on 127.0.0.i, all on the base port'],
      ['--host H', 'the address every node listens on (default 127.0.0.1)'],
      jsonFlag,
    ],
    examples: ['tunekv cluster start', 'tunekv cluster start --detach --base-port 0 --dir /tmp/c1', 'tunekv cluster start --nodes 5 --metrics-base-port 0 --detach'],
  },
  'cluster stop': {
    usage: 'tunekv cluster stop [--dir DIR] [--json]',
    about: 'Stop every node: SIGTERM, then SIGKILL after 10 s.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster stop', 'tunekv cluster stop --dir /tmp/c1 --json'],
  },
  'cluster status': {
    usage: 'tunekv cluster status [--dir DIR] [--json]',
    about: 'Each node: address, state, pid, partitions owned, keys, ring version, transfers, faults.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster status', 'tunekv cluster status --json'],
  },
  'cluster add': {
    usage: 'tunekv cluster add [--nodes 1] [--wait] [--timeout-ms MS] [--dir DIR] [--json]',
    about: 'Start new nodes on standby and join them in one plan.',
    flags: [['--nodes K', 'nodes to add (default 1)'], ['--wait', 'return when the transition is complete'], ['--timeout-ms MS', 'how long --wait waits'], dirFlag, jsonFlag],
    examples: ['tunekv cluster add', 'tunekv cluster add --nodes 2 --wait'],
  },
  'cluster leave': {
    usage: 'tunekv cluster leave NODE [--wait] [--timeout-ms MS] [--dir DIR] [--json]',
    about: 'The node hands its data off, then exits (any node, n1 too).',
    flags: [['--wait', 'return when it has left'], ['--timeout-ms MS', 'how long --wait waits'], dirFlag, jsonFlag],
    examples: ['tunekv cluster leave n4 --wait'],
  },
  'cluster remove': {
    usage: 'tunekv cluster remove NODE [--wait] [--timeout-ms MS] [--dir DIR] [--json]',
    about: 'Remove a dead node (kill it first): the others take over its partitions.',
    flags: [['--wait', 'return when the transition is complete'], ['--timeout-ms MS', 'how long --wait waits'], dirFlag, jsonFlag],
    examples: ['tunekv cluster kill n3 && tunekv cluster remove n3 --wait'],
  },
  'cluster kill': {
    usage: 'tunekv cluster kill NODE [--dir DIR] [--json]',
    about: 'SIGKILL the node: a crash.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster kill n3'],
  },
  'cluster restart': {
    usage: 'tunekv cluster restart NODE [--dir DIR] [--json]',
    about: 'Stop the node if it runs and start it again on its data, detached; returns once it answers.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster restart n3'],
  },
  'cluster pause': {
    usage: 'tunekv cluster pause NODE [--dir DIR] [--json]',
    about: 'SIGSTOP the node: it holds its connections but answers nothing.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster pause n2'],
  },
  'cluster resume': {
    usage: 'tunekv cluster resume NODE [--dir DIR] [--json]',
    about: 'SIGCONT a paused node.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster resume n2'],
  },
  'cluster partition': {
    usage: 'tunekv cluster partition NODES NODES... [--dir DIR] [--json]',
    about: 'Cut the links between groups of nodes (NODES like n1,n2); kept across restarts until heal.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster partition n1,n2 n3', 'tunekv cluster partition n1 n2,n3,n4,n5'],
  },
  'cluster heal': {
    usage: 'tunekv cluster heal [--dir DIR] [--json]',
    about: 'Undo every partition.',
    flags: [dirFlag, jsonFlag],
    examples: ['tunekv cluster heal'],
  },
  'cluster faults': {
    usage: 'tunekv cluster faults [--delay-ms MS] [--jitter-ms MS] [--loss P] [--dir DIR] [--json]',
    about: 'Delay and drop messages on every node-to-node link (all 0 clears them). Checked before anything is applied.',
    flags: [
      ['--delay-ms MS', 'added to every message (>= 0)'],
      ['--jitter-ms MS', 'plus up to this much more, at random (>= 0)'],
      ['--loss P', 'the chance a message is dropped, from 0 to 1'],
      dirFlag, jsonFlag,
    ],
    examples: ['tunekv cluster faults --delay-ms 5 --jitter-ms 2', 'tunekv cluster faults --loss 0.1', 'tunekv cluster faults'],
  },
  get: {
    usage: 'tunekv get KEY [--consistency L] [--r R] [--raw] [connection flags]',
    about: 'Read a key. Prints its value, or "N siblings:" and one "[i] value" line each; bytes print as (bytes, N) "..."; '
      + 'the replica report and context go to stderr. A missing key prints nothing and exits 1.',
    flags: [['--r R', 'replies to wait for (instead of a level)'], ['--raw', 'write the value\'s bytes only, no newline (fails on siblings, exit 5)']],
    groups: ['level', 'connection'],
    examples: ['tunekv get user:1', 'tunekv get photo:1 --raw > photo.jpg', 'tunekv get user:1 --consistency strong --json'],
  },
  put: {
    usage: 'tunekv put KEY VALUE|-|@FILE [--literal] [--consistency L] [--w W] [--context CTX] [--lww] [connection flags]',
    about: 'Write a value. - reads it from stdin and @FILE from a file, byte for byte (a bytes value); '
      + 'an argument is a string. Over 1 MiB fails with TOO_LARGE before connecting.',
    flags: [
      ['--literal', 'store VALUE as typed, even - or @...'],
      ['--w W', 'acknowledgements to wait for (instead of a level)'],
      ['--context CTX', 'the context of the read this write replaces (resolves siblings)'],
      ['--lww', 'last writer wins for this write'],
    ],
    groups: ['level', 'connection'],
    examples: ['tunekv put user:1 alice', 'echo hello | tunekv put greeting -', 'tunekv put photo:1 @photo.jpg --w 3'],
  },
  del: {
    usage: 'tunekv del KEY [--context CTX] [--consistency L] [--w W] [connection flags]',
    about: 'Delete a key (a tombstone). Without --context it deletes what it reads.',
    flags: [['--context CTX', 'the context of the read this delete replaces'], ['--w W', 'acknowledgements to wait for']],
    groups: ['level', 'connection'],
    examples: ['tunekv del user:1', 'tunekv del user:1 --w 3 --json'],
  },
  status: {
    usage: 'tunekv status [connection flags]',
    about: 'One node\'s view: ring, storage, transfers, peers, hints, anti-entropy, faults, metrics (details for admins). '
      + 'Uses ./data/cluster/cluster.secret when present and no user is given.',
    flags: [],
    groups: ['connection'],
    examples: ['tunekv status', 'tunekv status --host 127.0.0.1:7002 --json'],
  },
  counter: {
    usage: 'tunekv counter KEY [get | incr N | decr N | reset] [--consistency L] [--r R | --w W] [connection flags]',
    about: 'A counter (a CRDT): exact signed 64-bit values; N may be negative. A counter never written reads 0 (exit 0).',
    flags: [['--r R', 'replies a get waits for'], ['--w W', 'acknowledgements an update waits for']],
    groups: ['level', 'connection'],
    examples: ['tunekv counter hits incr 1', 'tunekv counter hits decr -5', 'tunekv counter hits get --json'],
  },
  set: {
    usage: 'tunekv set KEY [members | add MEMBER | rm MEMBER | del] [--consistency L] [--r R | --w W] [connection flags]',
    about: 'A set of strings (a CRDT): members prints one a line; an empty set prints nothing (exit 0). MEMBER is taken as typed.',
    flags: [['--r R', 'replies a read waits for'], ['--w W', 'acknowledgements an update waits for']],
    groups: ['level', 'connection'],
    examples: ['tunekv set cart add apple', 'tunekv set cart members', 'tunekv set cart rm apple --json'],
  },
  join: {
    usage: 'tunekv join HOST:PORT [connection flags]',
    about: 'Stage the join of a node started with --standby (admin); apply with tunekv commit.',
    flags: [], groups: ['connection'],
    examples: ['tunekv join 10.0.0.4:7001 && tunekv plan && tunekv commit'],
  },
  leave: {
    usage: 'tunekv leave NODE [connection flags]',
    about: 'Stage a member\'s leave (admin): it hands its data off, then exits.',
    flags: [], groups: ['connection'],
    examples: ['tunekv leave n4 && tunekv commit'],
  },
  remove: {
    usage: 'tunekv remove NODE [connection flags]',
    about: 'Stage the removal of a dead member (admin).',
    flags: [], groups: ['connection'],
    examples: ['tunekv remove n3 && tunekv commit'],
  },
  replace: {
    usage: 'tunekv replace NODE HOST:PORT [connection flags]',
    about: 'Stage the replacement of a member by a node started with --standby (admin).',
    flags: [], groups: ['connection'],
    examples: ['tunekv replace n3 10.0.0.5:7001 && tunekv commit'],
  },
  plan: {
    usage: 'tunekv plan [connection flags]',
    about: 'What is staged, and which partitions it would move.',
    flags: [], groups: ['connection'],
    examples: ['tunekv plan', 'tunekv plan --json'],
  },
  commit: {
    usage: 'tunekv commit [connection flags]',
    about: 'Apply what is staged (admin); transfers run in the background (see tunekv status).',
    flags: [], groups: ['connection'],
    examples: ['tunekv commit'],
  },
  'transfer-limit': {
    usage: 'tunekv transfer-limit MBPS [connection flags]',
    about: 'Set the partition transfer limit of every member, or of the --host node only (admin).',
    flags: [], groups: ['connection'],
    examples: ['tunekv transfer-limit 50', 'tunekv transfer-limit 5 --host 127.0.0.1:7002'],
  },
  conflicts: {
    usage: 'tunekv conflicts [--key K] [--since 10m|ISO-TIME] [--all] [connection flags]',
    about: 'A node\'s conflict log (or every member\'s with --all), oldest first (role read).',
    flags: [['--key K', 'only this key'], ['--since T', 'only records after T (10m, 2h, 1d or an ISO time)'], ['--all', 'every member\'s log']],
    groups: ['connection'],
    examples: ['tunekv conflicts --since 1h', 'tunekv conflicts --key cart:1 --all --json'],
  },
  users: {
    usage: 'tunekv users add NAME --role read|write|admin [--password-file F] [--file USERS_FILE] [--json]',
    about: 'Make a users-file line (salted scrypt keys, never the password), appended to --file or printed. '
      + 'The password is read from --password-file, TUNEKV_PASSWORD_FILE or stdin.',
    flags: [
      ['--role R', 'read, write or admin'],
      ['--password-file F', 'the password, first line of F'],
      ['--file USERS_FILE', 'append the line here (created mode 0600)'],
      jsonFlag,
    ],
    examples: ['tunekv users add alice --role write --password-file alice.pw --file users.txt', 'printf s3cret | tunekv users add bob --role read'],
  },
  sim: {
    usage: 'tunekv sim [--seeds N] [--from F] | [--seed S [--knobs JSON] [--trace KEY]] [--json]',
    about: 'Run seeded simulations of whole clusters with invariant checks; a failure prints its replay command (exit 1).',
    flags: [
      ['--seeds N', 'how many seeds (default 100)'],
      ['--from F', 'the first seed'],
      ['--seed S', 'one seed, with its knobs and stats'],
      ['--knobs JSON', 'override knobs for a replay'],
      ['--trace KEY', 'trace one key\'s messages'],
      ['--json', 'one JSON object: {ok, reports: [...]}'],
    ],
    examples: ['tunekv sim --seeds 20', 'tunekv sim --seed 7 --trace k3'],
  },
  bench: {
    usage: 'tunekv bench [--hosts H:P,...] [--nodes 3] [--level L]... [--workload A:uniform|B:zipfian]... [flags] [--full] [--json]',
    about: 'Measure what each consistency level costs; writes report.md and report.html into --out.',
    flags: [
      ['--hosts H:P,...', 'an existing cluster (default: start one)'],
      ['--nodes N', 'nodes of the cluster it starts'],
      ['--level L', 'a level to measure (repeatable)'],
      ['--workload W', 'A:uniform, B:zipfian, ... (repeatable)'],
      ['--keys N, --value-bytes N', 'the data set'],
      ['--clients N, --rate OPS', 'closed-loop clients, open-loop rate'],
      ['--duration-ms MS, --warmup-ms MS', 'how long each run measures and warms up'],
      ['--delay-ms MS, --jitter-ms MS', 'link faults during the runs'],
      ['--staleness-pairs R/W,..., --staleness-t MS,..., --staleness-trials N', 'the staleness experiment'],
      ['--out DIR, --seed S', 'where reports go; the workload seed'],
      ['--full, --repeats N, --sweep, --profile, --peers redis,etcd, --scale', 'the longer phases (--full: all of them)'],
      jsonFlag,
    ],
    examples: ['tunekv bench --duration-ms 2000', 'tunekv bench --full --out bench/results/full'],
  },
  help: {
    usage: 'tunekv help [COMMAND [SUBCOMMAND]]',
    about: 'Print the command list, or one command\'s help (same as tunekv COMMAND --help).',
    flags: [],
    examples: ['tunekv help get', 'tunekv help cluster start'],
  },
};

const clusterSubs = ['start', 'stop', 'status', 'add', 'leave', 'remove', 'kill', 'restart', 'pause', 'resume', 'partition', 'heal', 'faults'];

/** Every command with its own help, for tests and `tunekv help`. */
export const helpTopics: readonly string[] = Object.keys(commands);

export function topHelp(): string {
  const line = (name: string): string => `  ${name.padEnd(18)} ${commands[name]!.about.split(/(?<=\.) /)[0]}`;
  return [
    'usage: tunekv COMMAND [ARGS] [FLAGS]    (tunekv COMMAND --help for its flags and examples)',
    '',
    'data:',
    ...['get', 'put', 'del', 'counter', 'set', 'conflicts'].map(line),
    'cluster members (a running cluster, admin):',
    ...['status', 'join', 'leave', 'remove', 'replace', 'plan', 'commit', 'transfer-limit'].map(line),
    'local clusters (tunekv cluster SUB --help):',
    `  cluster ${clusterSubs.join('|')}`,
    'processes and tools:',
    ...['node', 'users', 'sim', 'bench', 'help'].map(line),
    '',
    'tunekv --version prints the version. Exit codes: 0 ok, 1 not found, 2 usage, 3 unavailable, 4 auth, 5 refused, 6 internal.',
  ].join('\n');
}

function clusterHelp(): string {
  return ['usage: tunekv cluster SUBCOMMAND [ARGS] [--dir DIR] [--json]', '',
    ...clusterSubs.map((s) => `  ${s.padEnd(10)} ${commands[`cluster ${s}`]!.about.split(/(?<=\.) /)[0]}`),
    '', 'tunekv cluster SUBCOMMAND --help for its flags and examples.'].join('\n');
}

function render(h: CommandHelp): string {
  const flags = [...h.flags, ...(h.groups?.includes('level') ? levelFlags : []), ...(h.groups?.includes('connection') ? connectionFlags : [])];
  const width = Math.min(32, Math.max(0, ...flags.map(([f]) => f.length)));
  return [
    `usage: ${h.usage}`,
    '',
    h.about,
    ...(flags.length > 0 ? ['', 'flags:', ...flags.map(([f, d]) => `  ${f.padEnd(width)}  ${d}`)] : []),
    '',
    'examples:',
    ...h.examples.map((e) => `  ${e}`),
  ].join('\n');
}

/** Help for the words after `tunekv` (a command, or `cluster SUB`);
 * undefined when they name no command. */
export function helpFor(words: readonly string[]): string | undefined {
  const [cmd, sub] = words;
  if (cmd === undefined) return topHelp();
  if (cmd === 'cluster') {
    if (sub === undefined || !clusterSubs.includes(sub)) return clusterHelp();
    return render(commands[`cluster ${sub}`]!);
  }
  const h = commands[cmd];
  return h === undefined ? undefined : render(h);
}

/** The synopsis alone, printed under a usage error. */
export function synopsisFor(words: readonly string[]): string {
  const [cmd, sub] = words;
  const h = cmd === 'cluster' ? (sub !== undefined ? commands[`cluster ${sub}`] : undefined) : cmd !== undefined ? commands[cmd] : undefined;
  if (h === undefined) return 'usage: tunekv COMMAND ... (tunekv --help lists the commands)';
  return `usage: ${h.usage}\n(tunekv ${cmd}${cmd === 'cluster' ? ` ${sub}` : ''} --help for flags and examples)`;
}
