/**
 * Library messages that tell a program which option to set, reworded for a command-line user
 * with the flag or config key that sets it. Library users keep the library's words.
 */
import { MISSING_KEY_MESSAGE } from '../engine/model-crypto.js';

const CLI_WORDING: readonly (readonly [library: string, cli: string])[] = [
  [
    MISSING_KEY_MESSAGE,
    'the file is encrypted: give its key with --dec-key-file FILE (and --dec-mode AES-CBC if it was encrypted so), or decKeyFile in the servable entry of the config file',
  ],
];

/** `message` with each library phrase replaced by the CLI's. */
export function cliWording(message: string): string {
  return CLI_WORDING.reduce((text, [library, cli]) => text.replaceAll(library, cli), message);
}
