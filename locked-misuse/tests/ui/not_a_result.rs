#[distlock::locked(name = "order:{order_id}", locks = locks)]
async fn charge(locks: &distlock::memory::MemoryLock, order_id: u64) -> u64 {
    order_id
}

#[derive(Debug)]
struct NoFrom;

#[distlock::locked(name = "order:{order_id}", locks = locks)]
async fn refund(locks: &distlock::memory::MemoryLock, order_id: u64) -> Result<u64, NoFrom> {
    Ok(order_id)
}

#[distlock::locked(name = "order:{order_id}", locks = locks)]
async fn nothing(locks: &distlock::memory::MemoryLock, order_id: u64) {}

fn main() {}
