// Encrypts an Office file with a password (ECMA-376 agile encryption, as Office does): the tests' password-protected
// .docx and .pptx. Usage: node encrypt-office.mjs IN OUT PASSWORD
import fs from 'node:fs';
import officeCrypto from 'officecrypto-tool';

const [input, output, password] = process.argv.slice(2);
if (!input || !output || !password) {
  console.error('usage: node encrypt-office.mjs IN OUT PASSWORD');
  process.exit(2);
}
const encrypted = await officeCrypto.encrypt(fs.readFileSync(input), { password });
if (!(await officeCrypto.isEncrypted(encrypted))) {
  console.error('the output is not encrypted');
  process.exit(1);
}
fs.writeFileSync(output, encrypted);
