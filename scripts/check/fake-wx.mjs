// A minimal `wx` with the documented surface mpbus touches, for when the test kit's
// createWxRuntime() is not built. Every socket fails to connect, as a socket to a closed port does
// on WeChat: `onError` then `onClose` with 1006, delivered later, never from inside connectSocket.

export function createFakeWx() {
  const store = new Map()
  const handles = new Set()
  const later = (fn) => {
    const h = setTimeout(() => {
      handles.delete(h)
      fn()
    }, 5)
    handles.add(h)
  }
  const wx = {
    connectSocket(options) {
      const on = {}
      let done = false
      const finish = (code, reason) => {
        if (done) return
        done = true
        if (on.close) on.close({ code, reason })
      }
      later(() => {
        if (done) return
        if (on.error) on.error({ errMsg: 'connectSocket:fail' })
        finish(1006, 'abnormal closure')
      })
      const fail = (opts, errMsg) => {
        if (opts?.fail) opts.fail({ errMsg })
        if (opts?.complete) opts.complete({ errMsg })
      }
      return {
        onOpen: (fn) => {
          on.open = fn
        },
        onClose: (fn) => {
          on.close = fn
        },
        onError: (fn) => {
          on.error = fn
        },
        onMessage: (fn) => {
          on.message = fn
        },
        send: (opts) => fail(opts, 'sendSocketMessage:fail WebSocket is not connected'),
        close: (opts) => {
          later(() => finish(opts?.code || 1000, opts?.reason || ''))
          if (opts?.success) opts.success({ errMsg: 'closeSocket:ok' })
        },
        url: options?.url,
      }
    },
    setStorageSync: (key, data) => void store.set(key, data),
    getStorageSync: (key) => (store.has(key) ? store.get(key) : ''),
    removeStorageSync: (key) => void store.delete(key),
    getStorageInfoSync: () => ({ keys: [...store.keys()], currentSize: 0, limitSize: 10240 }),
    setStorage(o) {
      store.set(o.key, o.data)
      o.success?.({ errMsg: 'setStorage:ok' })
    },
    getStorage(o) {
      if (store.has(o.key)) o.success?.({ data: store.get(o.key), errMsg: 'getStorage:ok' })
      else o.fail?.({ errMsg: 'getStorage:fail data not found' })
    },
    removeStorage(o) {
      store.delete(o.key)
      o.success?.({ errMsg: 'removeStorage:ok' })
    },
    onNetworkStatusChange: () => {},
    offNetworkStatusChange: () => {},
    getNetworkType: (o) => later(() => o?.success?.({ networkType: 'wifi' })),
    onAppShow: () => {},
    onAppHide: () => {},
    offAppShow: () => {},
    offAppHide: () => {},
  }
  return {
    wx,
    dispose() {
      for (const h of handles) clearTimeout(h)
      handles.clear()
    },
  }
}
