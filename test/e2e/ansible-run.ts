// Reading ansible-playbook's output: the PLAY RECAP per host, and which tasks changed a host.

export interface Recap {
  ok: number;
  changed: number;
  unreachable: number;
  failed: number;
}

export function recap(output: string): Map<string, Recap> {
  const hosts = new Map<string, Recap>();
  const re = /^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)/gm;
  for (const m of output.matchAll(re)) {
    hosts.set(m[1] ?? '', {
      ok: +(m[2] ?? 0),
      changed: +(m[3] ?? 0),
      unreachable: +(m[4] ?? 0),
      failed: +(m[5] ?? 0),
    });
  }
  return hosts;
}

/** The tasks and handlers that report `changed` on `host`, by their headers. */
export function changedTasks(output: string, host: string): string[] {
  return output
    .split('\n\n')
    .filter((block) => block.includes(`changed: [${host}]`))
    .map((block) => /^(?:TASK|RUNNING HANDLER) \[([^\]]+)\]/m.exec(block)?.[1] ?? block.slice(0, 200));
}
