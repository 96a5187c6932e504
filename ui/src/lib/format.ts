/** Display formatting shared by the views. */

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

export function formatBytes(size_bytes: number | null | undefined): string {
  if (size_bytes === null || size_bytes === undefined) return '—';
  let value = size_bytes;
  let unit = 0;
  while (value >= 1024 && unit < BYTE_UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(value < 10 ? 1 : 0)} ${BYTE_UNITS[unit]}`;
}

const integer = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
const decimal = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });

export function formatCount(value: number | null | undefined): string {
  return value === null || value === undefined ? '—' : integer.format(value);
}

export function formatRate(per_sec: number): string {
  return per_sec === 0 ? '0' : decimal.format(per_sec);
}

function pad(value: number, width = 2): string {
  return String(value).padStart(width, '0');
}

/** Wall-clock time with milliseconds: events happen close together. */
export function formatTime(time_ms: number): string {
  const date = new Date(time_ms);
  return `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function formatDateTime(time_ms: number): string {
  const date = new Date(time_ms);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ${formatTime(time_ms)}`;
}

/** The value of a `datetime-local` input as ms since the epoch (local time). */
export function parseLocalDateTime(value: string): number | null {
  if (!value) return null;
  const time_ms = new Date(value).getTime();
  return Number.isNaN(time_ms) ? null : time_ms;
}

/** `time_ms` in the format `datetime-local` inputs take. */
export function toLocalDateTimeInput(time_ms: number): string {
  const date = new Date(time_ms);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

/** Parses a whole number typed by the user; null when it is not one. */
export function parseInteger(value: string | number | null | undefined): number | null {
  if (value === null || value === undefined || value === '') return null;
  const parsed = typeof value === 'number' ? value : Number(value.trim());
  return Number.isInteger(parsed) ? parsed : null;
}

const RATE_UNITS = ['B/s', 'kB/s', 'MB/s', 'GB/s'];

/** A byte rate as people say it (decimal units, as the rate is set): 10 kB/s. */
export function formatByteRate(bytes_per_sec: number): string {
  let value = bytes_per_sec;
  let unit = 0;
  while (value >= 1000 && unit < RATE_UNITS.length - 1) {
    value /= 1000;
    unit += 1;
  }
  return `${decimal.format(value)} ${RATE_UNITS[unit]}`;
}
