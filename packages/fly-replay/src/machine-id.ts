// The Machine ID grammar belongs to the configuration format (peers, replay rules); the protocol reuses it so that
// a cookie, a header and a config file all agree on what an ID is.
export { isValidMachineId, MACHINE_ID_PATTERN } from '@navigator/config'
