export { MpbusError } from '../index'
