// Markdown tables of one run (`oneRun`) or of several (`spreadTables`: median of the runs' values,
// min–max in brackets), from the JSON that run.ts produces.
export type RunResult = Record<string, any>

const cell = (values: number[], digits = 2, unit = '', never = 'never') => {
  const finite = values.filter(Number.isFinite)
  if (!finite.length) return never
  const f = (v: number) => (digits === 0 ? Math.round(v).toLocaleString('en') : v.toFixed(digits)) + unit
  const min = Math.min(...finite)
  const max = Math.max(...finite)
  const missing = values.length - finite.length
  const range = min === max ? f(min) : `${f(min)}–${f(max)}`
  return missing ? `${range} (${never} in ${missing} of ${values.length})` : range
}

function table(head: string[], rows: string[][]): string {
  return [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n')
}

/** Tables of one run or of several: every cell is the range of that value over `runs`. */
export function tables(runs: RunResult[]): string {
  const first = runs[0]!
  const out: string[] = []
  const pick = (path: (r: RunResult) => number) => runs.map(path)
  const t = first.throughput
  out.push(
    `Throughput: ${t.messages.toLocaleString('en')} messages of 100 bytes, client → server on loopback (median of ${t.rounds} each run)\n`,
    table(
      ['client', 'delivered msg/s × raw `ws`', 'client CPU per message × raw'],
      Object.keys(t.rows).map((row) => [
        first.labels[row],
        cell(pick((r) => r.throughput.rows[row].ofRaw)),
        cell(
          pick((r) => r.throughput.rows[row].cpuOfRaw),
          1,
        ),
      ]),
    ),
  )
  const p = first.replay
  out.push(
    `\nReplay: ${p.messages.toLocaleString('en')} messages queued offline, from the socket's open to the last at the server (median of ${p.rounds})\n`,
    table(
      ['client', 'msg/s × raw `ws`'],
      Object.keys(p.rows).map((row) => [
        first.labels[`replay.${row}`],
        cell(pick((r) => r.replay.rows[row].ofRaw)),
      ]),
    ),
  )
  const w = first.wxCost
  out.push(
    `\nThe wx emulation's own cost: ${w.frames.toLocaleString('en')} raw frames through its SocketTask against \`ws\` directly (median of ${w.rounds})\n`,
    table(
      ['', 'frames/s × raw `ws`', 'CPU per frame × raw'],
      [
        [
          'wx emulation (no mpbus)',
          cell(pick((r) => r.wxCost.rateOfRaw)),
          cell(
            pick((r) => r.wxCost.cpuPerFrameOfRaw),
            1,
          ),
        ],
      ],
    ),
  )
  out.push(
    `\nFault script (frozen link, reset, refused outage of 3 s; one message every 10 ms; ${runs.length === 1 ? 'each value one script' : `each range over ${runs.length} runs`})\n`,
    table(
      [
        'client',
        'sent',
        'lost',
        'reordered',
        'repeats',
        'frozen link noticed after',
        'first delivery after the outage',
      ],
      Object.keys(first.faults).map((name) => {
        const f = (key: string) => runs.flatMap((r) => r.faults[name].map((x: any) => x[key]))
        return [
          first.labels[`fault.${name}`],
          cell(f('sent'), 0),
          cell(f('lost'), 0),
          cell(f('reordered'), 0),
          cell(f('repeats'), 0),
          cell(f('noticeMs'), 0, ' ms', 'not before the reset'),
          cell(f('firstAfterOutageMs'), 0, ' ms'),
        ]
      }),
    ),
  )
  const m = first.massReconnect
  out.push(
    `\nMass reconnect: ${m.clients.toLocaleString('en')} clients dropped at once, ${m.missed} room publications missed each, all reconnecting at once\n`,
    table(
      [
        'server',
        'every client has all it missed after',
        '× socket.io',
        'clients missing some',
        'seen twice',
        'Redis commands per recovered message',
      ],
      ['mpbus', 'mpbusRedis', 'socketIo']
        .filter((name) => runs.every((r) => r.massReconnect[name]))
        .map((name) => [
          first.labels[`mass.${name}`],
          cell(
            pick((r) => r.massReconnect[name].recoverMs),
            0,
            ' ms',
          ),
          cell(pick((r) => r.massReconnect[name].recoverMs / r.massReconnect.socketIo.recoverMs)),
          cell(
            pick((r) => r.massReconnect[name].clientsMissingSome),
            0,
          ),
          cell(
            pick((r) => r.massReconnect[name].repeats),
            0,
          ),
          name === 'mpbus'
            ? '–'
            : cell(
                pick((r) => r.massReconnect[name].redisCommandsPerRecovered),
                2,
              ),
        ]),
    ),
  )
  out.push(
    `\nCold start after the app was killed, ${first.coldStart.missed} publications missed: mpbus recovered ${cell(
      pick((r) => r.coldStart.mpbus),
      0,
    )}, socket.io ${cell(
      pick((r) => r.coldStart.socketIo),
      0,
    )}.`,
  )
  return out.join('\n')
}
