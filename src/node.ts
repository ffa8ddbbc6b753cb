export { createFileStorage } from './platform/file-storage'
